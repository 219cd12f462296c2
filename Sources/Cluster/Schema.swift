import PostgresNIO

/// The cluster's tables, created and migrated by synthd itself.
///
/// Each migration is a list of statements applied in one transaction together with its row in
/// `synthd_schema`; PostgreSQL's DDL is transactional, so a node that dies mid-migration
/// leaves the previous version. Nodes that start together take an advisory lock first, so
/// one migrates and the others find it done. A database from a newer synthd is refused
/// (`ClusterError.schemaTooNew`) rather than written in a layout this node does not know.
public enum Schema {
    public struct Migration: Sendable {
        public let version: Int
        public let summary: String
        public let statements: [String]
    }

    /// In order; never edit one that has shipped: add the next.
    public static let migrations: [Migration] = [
        Migration(version: 1, summary: "job queue with leases, fencing tokens and history", statements: [
            "CREATE SEQUENCE synthd_fencing_tokens",
            "CREATE SEQUENCE synthd_queue_positions",
            """
            CREATE TABLE synthd_jobs (
                id bigserial PRIMARY KEY,
                dataset text NOT NULL,
                kind text NOT NULL CHECK (kind IN ('train', 'generate')),
                state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
                position bigint NOT NULL DEFAULT nextval('synthd_queue_positions'),
                enqueued_at timestamptz NOT NULL DEFAULT now(),
                attempts bigint NOT NULL DEFAULT 0,
                last_error text,
                remaining_seconds double precision,
                budget_seconds double precision,
                not_before timestamptz,
                step_at_start bigint,
                node text,
                lease_token bigint,
                lease_expires_at timestamptz,
                finished_at timestamptz
            )
            """,
            // The same work waits once; a dataset has one job running, so one node writes its
            // state folder at a time (the index is what makes two claims of it collide).
            "CREATE UNIQUE INDEX synthd_jobs_one_waiting ON synthd_jobs (dataset, kind) WHERE state = 'queued'",
            "CREATE UNIQUE INDEX synthd_jobs_one_running ON synthd_jobs (dataset) WHERE state = 'running'",
            "CREATE INDEX synthd_jobs_queued ON synthd_jobs (position) WHERE state = 'queued'",
            """
            CREATE TABLE synthd_job_history (
                id bigserial PRIMARY KEY,
                job bigint NOT NULL,
                dataset text NOT NULL,
                at timestamptz NOT NULL DEFAULT now(),
                node text,
                event text NOT NULL,
                token bigint,
                detail text
            )
            """,
            "CREATE INDEX synthd_job_history_job ON synthd_job_history (job)",
        ]),
        Migration(version: 2, summary: "node registry and per-dataset runtime state", statements: [
            """
            CREATE TABLE synthd_nodes (
                name text PRIMARY KEY,
                device text NOT NULL,
                threads bigint NOT NULL,
                free_memory bigint,
                started_at timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now(),
                draining boolean NOT NULL DEFAULT false,
                stopped_at timestamptz
            )
            """,
            """
            CREATE TABLE synthd_datasets (
                name text PRIMARY KEY,
                runtime jsonb NOT NULL DEFAULT '{}',
                scan_node text,
                scan_until timestamptz,
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]),
        // A node whose jobs wait for space (`SpaceHold`) says so with its heartbeat.
        Migration(version: 3, summary: "what a node waits for before it starts jobs", statements: [
            "ALTER TABLE synthd_nodes ADD COLUMN waiting_for_space text",
        ]),
        // A node whose spool is gone or unmounted (`SpoolAbsence`) says so with its heartbeat.
        Migration(version: 4, summary: "why a node hears nothing from the spool", statements: [
            "ALTER TABLE synthd_nodes ADD COLUMN spool_missing text",
        ]),
        // A node whose last reload did not read (`ReloadFailure`) says so with its heartbeat:
        // the nodes share one state folder, so the single machine's file cannot say whose.
        Migration(version: 5, summary: "a node's configuration reload that did not read", statements: [
            "ALTER TABLE synthd_nodes ADD COLUMN reload_failed text",
        ]),
    ]

    public static var latest: Int { migrations.last!.version }

    /// Brings the database to `target` (default: the latest). Returns the versions before and after.
    @discardableResult
    public static func migrate(_ database: ClusterDatabase, to target: Int = latest) throws -> (from: Int, to: Int) {
        try database.transaction { t in
            // Any constant: the nodes agree on it, and nothing else in synthd takes it.
            try t.query("SELECT pg_advisory_xact_lock(7368746864)", "the migration lock")
            try t.query("""
                CREATE TABLE IF NOT EXISTS synthd_schema (
                    version bigint PRIMARY KEY,
                    summary text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, "creating synthd_schema")
            let current = try currentVersion(t)
            guard current <= latest else { throw ClusterError.schemaTooNew(found: current, known: latest) }
            for migration in migrations where migration.version > current && migration.version <= target {
                for statement in migration.statements {
                    try t.query(PostgresQuery(unsafeSQL: statement), "schema migration \(migration.version)")
                }
                try t.query("INSERT INTO synthd_schema (version, summary) VALUES (\(migration.version), \(migration.summary))",
                            "recording schema migration \(migration.version)")
            }
            return (current, max(current, target))
        }
    }

    /// The version the database is at (0: empty).
    public static func version(_ database: ClusterDatabase) throws -> Int {
        try database.transaction { t in
            let exists = try t.query("SELECT to_regclass('synthd_schema') IS NOT NULL", "looking for synthd_schema")
            guard try exists.rows.first?.decode(Bool.self) == true else { return 0 }
            return try currentVersion(t)
        }
    }

    static func currentVersion(_ t: ClusterDatabase.Transaction) throws -> Int {
        try t.query("SELECT coalesce(max(version), 0) FROM synthd_schema", "reading the schema version").rows.first?.decode(Int.self) ?? 0
    }
}
