"""Recipes: the end-to-end jobs behind the entry points (train, evaluate, score), built from components."""
