-- Runs once, when the postgres container initialises an empty data directory
-- (docker-entrypoint-initdb.d). One database per service, as in docs/conventions.md.
CREATE DATABASE vault;
CREATE DATABASE concierge;
CREATE DATABASE room_service;
