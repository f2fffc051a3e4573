"""Cached answers stored without TOAST compression.

An embeddings answer is ~8 KB of JSON (384 floats), so every cached row went through
pglz, which saved ~40 % of its size (4.9 KB instead of 7.9 KB) and cost Postgres about as
much CPU as the rest of the upsert: 250-325 against 100-125 us per row, measured on the
uncached embeddings path, where each answer writes one row. The cache is an
expiring copy of answers: CPU on the request path matters more than its size. Rows
already stored keep their compression until rewritten.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mlapi", "0005_billing_export"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ml_service_cache ALTER COLUMN response_data SET STORAGE EXTERNAL",
            reverse_sql="ALTER TABLE ml_service_cache ALTER COLUMN response_data SET STORAGE EXTENDED",
        ),
    ]
