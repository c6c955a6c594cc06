"""Storage: the database engine, table models and Alembic migrations.

The only package that imports SQLAlchemy's engine machinery. SQLite (WAL) embedded by default,
PostgreSQL by URL; one model for both. Imports: ``config``, ``errors``, ``types``.
"""
