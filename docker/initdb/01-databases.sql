-- Run once by the TimescaleDB-HA image on an empty volume: the platform's data database (TimescaleDB and
-- pgvector are created by the platform's own migrations) and Dagster's storage.
CREATE DATABASE fks;
CREATE DATABASE dagster;
