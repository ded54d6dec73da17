"""Ordered SQL migrations (NNN_name.sql), applied once each by fks_pipelines.lib.db.connect.migrate."""
