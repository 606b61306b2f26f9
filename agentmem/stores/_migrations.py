"""The schema migrations of the relational stores, frozen as data.

Append-only: a shipped migration is never edited (a store that applied it would never see the
change), a new one is appended. ``tests/unit/test_frozen_migrations.py`` pins the hash of
each shipped text, so an edit fails the suite. The texts are literal SQL, not built by
functions, so editing shared code cannot change a shipped migration by accident.
"""

from __future__ import annotations

SQLITE: tuple[str, ...] = (
    # 1: the memories, their history, the outbox and the embedding cache.
    """
    CREATE TABLE memories (
        id TEXT PRIMARY KEY, org_id TEXT, user_id TEXT, agent_id TEXT, thread_id TEXT,
            kind TEXT NOT NULL, text TEXT NOT NULL,
        metadata TEXT NOT NULL, provenance TEXT NOT NULL, content_hash TEXT NOT NULL,
        event_time REAL, valid_from REAL, valid_to REAL, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, invalidated_at REAL, importance REAL NOT NULL,
        access_count INTEGER NOT NULL, last_accessed_at REAL, version INTEGER NOT NULL
    );
    CREATE INDEX memories_user ON memories (user_id, kind, created_at);
    CREATE INDEX memories_agent ON memories (agent_id, created_at);
    CREATE INDEX memories_org ON memories (org_id, created_at);
    CREATE INDEX memories_thread ON memories (thread_id, created_at);
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, memory_id TEXT NOT NULL, org_id TEXT,
            user_id TEXT, agent_id TEXT, thread_id TEXT,
        event TEXT NOT NULL, version INTEGER NOT NULL, old_text TEXT, new_text TEXT,
        old_metadata TEXT, new_metadata TEXT, actor TEXT NOT NULL, at REAL NOT NULL
    );
    CREATE INDEX history_memory ON history (memory_id, seq);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, memory_id TEXT NOT NULL, op TEXT NOT NULL
    );
    CREATE TABLE embedding_cache (
        embedder TEXT NOT NULL, content_hash TEXT NOT NULL, vector BLOB NOT NULL,
        PRIMARY KEY (embedder, content_hash)
    );
    """,
    # 2: the knowledge graph's partitions and items (agentmem.graph.networkx_store).
    """
    CREATE TABLE graph_partitions (
        key TEXT PRIMARY KEY, org_id TEXT, user_id TEXT, agent_id TEXT, thread_id TEXT,
            version INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX graph_partitions_user ON graph_partitions (user_id, agent_id);
    CREATE INDEX graph_partitions_org ON graph_partitions (org_id);
    CREATE INDEX graph_partitions_thread ON graph_partitions (thread_id);
    CREATE TABLE graph_items (
        partition TEXT NOT NULL, kind TEXT NOT NULL, item_id TEXT NOT NULL,
        data TEXT NOT NULL, PRIMARY KEY (partition, kind, item_id)
    );
    CREATE INDEX graph_items_item ON graph_items (kind, item_id);
    """,
    # 3: consolidation's job ledger, per-scope watermarks and leases (consolidation/).
    """
    CREATE TABLE consolidation_jobs (
        run_id TEXT NOT NULL, stage TEXT NOT NULL, scope TEXT NOT NULL,
        status TEXT NOT NULL, count_in INTEGER NOT NULL, count_out INTEGER NOT NULL,
        started_at REAL NOT NULL, duration_s REAL NOT NULL, error TEXT,
        attempt INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, stage)
    );
    CREATE INDEX consolidation_jobs_scope ON consolidation_jobs (scope, started_at);
    CREATE INDEX consolidation_jobs_started ON consolidation_jobs (started_at);
    CREATE TABLE consolidation_watermarks (
        scope TEXT NOT NULL, stage TEXT NOT NULL, value TEXT NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (scope, stage)
    );
    CREATE TABLE consolidation_locks (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
    );
    """,
    # 4: learned utility: retrievals, feedback and utility estimates (agentmem.usefulness).
    """
    CREATE TABLE retrievals (
        retrieval_id TEXT PRIMARY KEY, scope TEXT NOT NULL, memory_ids TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX retrievals_created ON retrievals (created_at);
    CREATE TABLE feedback (
        feedback_id TEXT PRIMARY KEY, retrieval_id TEXT, scope TEXT NOT NULL,
        reward REAL NOT NULL, task TEXT, memory_ids TEXT NOT NULL, at REAL NOT NULL
    );
    CREATE TABLE memory_utility (
        memory_id TEXT PRIMARY KEY, utility REAL NOT NULL, prev_utility REAL NOT NULL,
        utility_n INTEGER NOT NULL, updated_at REAL NOT NULL
    );
    """,
    # 5: API keys of the memory service (server/), hashed at rest.
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, org_id TEXT NOT NULL,
        user_ids TEXT NOT NULL, agent_ids TEXT NOT NULL, secret_hash TEXT NOT NULL,
        created_at REAL NOT NULL, revoked_at REAL
    );
    CREATE INDEX api_keys_org ON api_keys (org_id, created_at);
    """,
    # 6: links between notes and versioned profile fields (agentmem.notes, agentmem.profiles).
    """
    CREATE TABLE note_links (
        source_id TEXT NOT NULL, target_id TEXT NOT NULL, org_id TEXT, user_id TEXT,
            agent_id TEXT, thread_id TEXT,
        link_type TEXT NOT NULL, made_by TEXT NOT NULL, reason TEXT NOT NULL,
        score REAL NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (source_id, target_id)
    );
    CREATE INDEX note_links_target ON note_links (target_id);
    CREATE TABLE profile_fields (
        id TEXT PRIMARY KEY, profile_key TEXT NOT NULL, org_id TEXT, user_id TEXT,
            agent_id TEXT, thread_id TEXT,
        field TEXT NOT NULL, value TEXT NOT NULL, value_type TEXT NOT NULL,
        sources TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,
        valid_from REAL, valid_to REAL, recorded_at REAL NOT NULL, superseded_at REAL
    );
    CREATE INDEX profile_fields_key ON profile_fields (profile_key, field, recorded_at);
    """,
    # 7: the forget journal, tombstones and quarantine (agentmem.erasure, agentmem.trust).
    """
    CREATE TABLE forget_tombstones (
        memory_id TEXT PRIMARY KEY, forget_id TEXT NOT NULL, org_id TEXT, user_id TEXT,
            agent_id TEXT, thread_id TEXT,
        at REAL NOT NULL
    );
    CREATE TABLE forget_jobs (
        forget_id TEXT PRIMARY KEY, scope TEXT NOT NULL, reason TEXT NOT NULL,
        purge INTEGER NOT NULL, status TEXT NOT NULL, targets TEXT NOT NULL,
        report TEXT NOT NULL, probe TEXT, created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX forget_jobs_status ON forget_jobs (status, created_at);
    CREATE TABLE quarantine (
        id TEXT PRIMARY KEY, org_id TEXT, user_id TEXT, agent_id TEXT, thread_id TEXT,
            record TEXT NOT NULL, source TEXT NOT NULL,
        flags TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL
    );
    CREATE INDEX quarantine_user ON quarantine (user_id, status, created_at);
    """,
    # 8: a graph partition's generation (agentmem.stores._graph_sql): a partition dropped and
    # written again is a new generation, so a copy cached before the drop is never reused.
    """
    ALTER TABLE graph_partitions ADD COLUMN generation TEXT NOT NULL DEFAULT '';
    """,
    # 9: unfinished maintenance (agentmem.indexing: a vector index rebuild under way).
    """
    CREATE TABLE maintenance (task TEXT PRIMARY KEY, started_at REAL NOT NULL);
    """,
)
"""The SQLite store's migrations, in order (version = position + 1)."""


POSTGRES: tuple[str, ...] = (
    # 1: the memories, their history, the outbox and the embedding cache.
    """
    CREATE TABLE memories (
        id TEXT COLLATE "C" PRIMARY KEY, org_id TEXT COLLATE "C", user_id TEXT COLLATE "C",
            agent_id TEXT COLLATE "C", thread_id TEXT COLLATE "C", kind TEXT NOT NULL,
        text TEXT NOT NULL, metadata JSONB NOT NULL, provenance JSONB NOT NULL,
        content_hash TEXT NOT NULL, event_time DOUBLE PRECISION,
            valid_from DOUBLE PRECISION,
        valid_to DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL, invalidated_at DOUBLE PRECISION,
        importance DOUBLE PRECISION NOT NULL, access_count INTEGER NOT NULL,
        last_accessed_at DOUBLE PRECISION, version INTEGER NOT NULL
    );
    CREATE INDEX memories_user ON memories (user_id, kind, created_at);
    CREATE INDEX memories_agent ON memories (agent_id, created_at);
    CREATE INDEX memories_org ON memories (org_id, created_at);
    CREATE INDEX memories_thread ON memories (thread_id, created_at);
    CREATE INDEX memories_metadata ON memories USING GIN (metadata jsonb_path_ops);
    CREATE TABLE history (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        memory_id TEXT COLLATE "C" NOT NULL, org_id TEXT COLLATE "C",
            user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C",
            thread_id TEXT COLLATE "C", event TEXT NOT NULL,
        version INTEGER NOT NULL, old_text TEXT, new_text TEXT, old_metadata JSONB,
        new_metadata JSONB, actor TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX history_memory ON history (memory_id, seq);
    CREATE TABLE outbox (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        memory_id TEXT COLLATE "C" NOT NULL, op TEXT NOT NULL
    );
    CREATE TABLE embedding_cache (
        embedder TEXT NOT NULL, content_hash TEXT NOT NULL, vector BYTEA NOT NULL,
        PRIMARY KEY (embedder, content_hash)
    );
    """,
    # 2: the knowledge graph's partitions and items (agentmem.graph.networkx_store).
    """
    CREATE TABLE graph_partitions (
        key TEXT COLLATE "C" PRIMARY KEY, org_id TEXT COLLATE "C",
            user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C",
            thread_id TEXT COLLATE "C", version INTEGER NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX graph_partitions_user ON graph_partitions (user_id, agent_id);
    CREATE INDEX graph_partitions_org ON graph_partitions (org_id);
    CREATE INDEX graph_partitions_thread ON graph_partitions (thread_id);
    CREATE TABLE graph_items (
        partition TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL,
            item_id TEXT COLLATE "C" NOT NULL,
        data TEXT NOT NULL, PRIMARY KEY (partition, kind, item_id)
    );
    CREATE INDEX graph_items_item ON graph_items (kind, item_id);
    """,
    # 3: consolidation's job ledger, per-scope watermarks and leases (consolidation/).
    """
    CREATE TABLE consolidation_jobs (
        run_id TEXT COLLATE "C" NOT NULL, stage TEXT COLLATE "C" NOT NULL,
            scope TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL, count_in INTEGER NOT NULL,
            count_out INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL, duration_s DOUBLE PRECISION NOT NULL,
            error TEXT,
        attempt INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, stage)
    );
    CREATE INDEX consolidation_jobs_scope ON consolidation_jobs (scope, started_at);
    CREATE INDEX consolidation_jobs_started ON consolidation_jobs (started_at);
    CREATE TABLE consolidation_watermarks (
        scope TEXT COLLATE "C" NOT NULL, stage TEXT COLLATE "C" NOT NULL,
            value TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (scope, stage)
    );
    CREATE TABLE consolidation_locks (
        name TEXT COLLATE "C" PRIMARY KEY, owner TEXT COLLATE "C" NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 4: learned utility: retrievals, feedback and utility estimates (agentmem.usefulness).
    """
    CREATE TABLE retrievals (
        retrieval_id TEXT COLLATE "C" PRIMARY KEY, scope TEXT NOT NULL,
            memory_ids TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX retrievals_created ON retrievals (created_at);
    CREATE TABLE feedback (
        feedback_id TEXT COLLATE "C" PRIMARY KEY, retrieval_id TEXT COLLATE "C",
            scope TEXT NOT NULL,
        reward DOUBLE PRECISION NOT NULL, task TEXT, memory_ids TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE memory_utility (
        memory_id TEXT COLLATE "C" PRIMARY KEY, utility DOUBLE PRECISION NOT NULL,
            prev_utility DOUBLE PRECISION NOT NULL,
        utility_n INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 5: API keys of the memory service (server/), hashed at rest.
    """
    CREATE TABLE api_keys (
        id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL,
            org_id TEXT COLLATE "C" NOT NULL,
        user_ids TEXT NOT NULL, agent_ids TEXT NOT NULL, secret_hash TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION
    );
    CREATE INDEX api_keys_org ON api_keys (org_id, created_at);
    """,
    # 6: links between notes and versioned profile fields (agentmem.notes, agentmem.profiles).
    """
    CREATE TABLE note_links (
        source_id TEXT COLLATE "C" NOT NULL, target_id TEXT COLLATE "C" NOT NULL,
            org_id TEXT COLLATE "C", user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C",
            thread_id TEXT COLLATE "C",
        link_type TEXT NOT NULL, made_by TEXT NOT NULL, reason TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (source_id, target_id)
    );
    CREATE INDEX note_links_target ON note_links (target_id);
    CREATE TABLE profile_fields (
        id TEXT COLLATE "C" PRIMARY KEY, profile_key TEXT COLLATE "C" NOT NULL,
            org_id TEXT COLLATE "C", user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C",
            thread_id TEXT COLLATE "C",
        field TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL, value_type TEXT NOT NULL,
        sources TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,
        valid_from DOUBLE PRECISION, valid_to DOUBLE PRECISION,
            recorded_at DOUBLE PRECISION NOT NULL, superseded_at DOUBLE PRECISION
    );
    CREATE INDEX profile_fields_key ON profile_fields (profile_key, field, recorded_at);
    """,
    # 7: the forget journal, tombstones and quarantine (agentmem.erasure, agentmem.trust).
    """
    CREATE TABLE forget_tombstones (
        memory_id TEXT COLLATE "C" PRIMARY KEY, forget_id TEXT COLLATE "C" NOT NULL,
            org_id TEXT, user_id TEXT, agent_id TEXT, thread_id TEXT,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE forget_jobs (
        forget_id TEXT COLLATE "C" PRIMARY KEY, scope TEXT NOT NULL, reason TEXT NOT NULL,
        purge INTEGER NOT NULL, status TEXT COLLATE "C" NOT NULL, targets TEXT NOT NULL,
        report TEXT NOT NULL, probe TEXT, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX forget_jobs_status ON forget_jobs (status, created_at);
    CREATE TABLE quarantine (
        id TEXT COLLATE "C" PRIMARY KEY, org_id TEXT, user_id TEXT, agent_id TEXT,
            thread_id TEXT, record TEXT NOT NULL, source TEXT NOT NULL,
        flags TEXT NOT NULL, status TEXT COLLATE "C" NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX quarantine_user ON quarantine (user_id, status, created_at);
    """,
    # 8: a graph partition's generation (agentmem.stores._graph_sql): a partition dropped and
    # written again is a new generation, so a copy cached before the drop is never reused.
    """
    ALTER TABLE graph_partitions ADD COLUMN generation TEXT COLLATE "C" NOT NULL DEFAULT '';
    """,
    # 9: unfinished maintenance (agentmem.indexing: a vector index rebuild under way).
    """
    CREATE TABLE maintenance (
        task TEXT COLLATE "C" PRIMARY KEY, started_at DOUBLE PRECISION NOT NULL
    );
    """,
)
"""The PostgreSQL store's migrations, in order (version = position + 1)."""

__all__ = ["POSTGRES", "SQLITE"]
