"""Backup and restore of a whole installation: `wegweiser backup` and `wegweiser restore`.

One archive, encrypted with age, holds every service's database, JetStream's own snapshot of
the stream and its consumers, the keys and the settings file, with a manifest of each file's
SHA-256. It is taken while the system serves, and what it holds is one consistent point:

1. The stream is snapshotted first (`jetstream.snapshot`: the server's snapshot API, with the
   consumers' state). It ends at stream sequence S.
2. Every database is then held at one instant (`databases.hold`): a read transaction on each
   (SQLite in WAL mode, a repeatable-read transaction exporting its snapshot on PostgreSQL),
   opened between two readings of the stream's last sequence that agree (L). Nothing was
   published while the holds were taken, so every event with sequence <= L was published
   before every database's instant, and every event after L after it.
3. The messages S+1..L (the tail) are read from the stream and kept beside the snapshot, and
   the databases are copied from their holds (SQLite's online backup; `pg_dump --snapshot`).

On restore the stream is rebuilt from the snapshot, the tail is published again in order
under its message ids, and each outbox forgets the events it still held that the stream
already has (the manifest lists them): a service's state, its outbox and the stream agree at
L. The consumers' positions are those of S, older than L: what they handled between S and L
comes again, and each service's inbox, restored at L, recognises it.

The recovery point is L. What happened after it is not in the archive: see the README,
"Backup and restore", for what an operator does about those events.
"""
