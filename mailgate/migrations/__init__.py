"""Alembic migrations, shipped inside the package so ``mailgate db upgrade`` works anywhere."""
