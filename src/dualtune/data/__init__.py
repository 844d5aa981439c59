"""Data: encoding samples for a VLM (prompt + target, images), loading domains, Lightning DataModules."""
