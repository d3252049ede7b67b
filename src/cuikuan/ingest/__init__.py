"""Files in: CSV and XLSX ledgers read in bounded batches of strings, validated set-at-a-time."""
