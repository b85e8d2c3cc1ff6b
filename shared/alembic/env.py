"""The one Alembic environment of every service: shared/migrations.py drives it (the
service, its metadata and the connection come in ``config.attributes``)."""
from alembic import context

from shared import migrations

migrations.run_env(context)
