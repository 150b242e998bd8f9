-- Schema v1: the records of DESIGN.md. Times are naive TIMESTAMPs holding UTC.
CREATE TABLE IF NOT EXISTS jobs (
    job_id        VARCHAR PRIMARY KEY,
    source        VARCHAR,          -- importer or adapter that wrote the row (acme, k8s, sim, ...)
    cluster       VARCHAR,
    "user"        VARCHAR,
    team          VARCHAR,
    project       VARCHAR,
    kind          VARCHAR,
    framework     VARCHAR,
    num_gpus      DOUBLE NOT NULL DEFAULT 0,
    num_nodes     INTEGER,
    priority      INTEGER,
    queue         VARCHAR,
    gpu_model     VARCHAR,
    node_pool     VARCHAR,
    submitted_at  TIMESTAMP,
    started_at    TIMESTAMP,
    ended_at      TIMESTAMP,
    status        VARCHAR NOT NULL,  -- succeeded/failed/cancelled/timeout/preempted/running/pending
    attempts      INTEGER NOT NULL DEFAULT 1,
    exit_code     INTEGER,
    gpu_util      DOUBLE             -- mean GPU utilisation 0..1 where the trace has it
);

CREATE TABLE IF NOT EXISTS attempts (
    job_id              VARCHAR NOT NULL,
    attempt             INTEGER NOT NULL,
    nodes               VARCHAR,     -- comma-separated node ids
    started_at          TIMESTAMP,
    ended_at            TIMESTAMP,
    status              VARCHAR,
    exit_code           INTEGER,
    reason              VARCHAR,
    last_checkpoint_at  TIMESTAMP,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE IF NOT EXISTS attempt_nodes (
    job_id   VARCHAR NOT NULL,
    attempt  INTEGER NOT NULL,
    node_id  VARCHAR NOT NULL,
    PRIMARY KEY (job_id, attempt, node_id)
);

CREATE TABLE IF NOT EXISTS nodes (
    node_id        VARCHAR PRIMARY KEY,
    gpu_model      VARCHAR,
    gpus           INTEGER,
    pool           VARCHAR,
    labels         JSON,
    conditions     JSON,
    cordoned       BOOLEAN DEFAULT FALSE,
    cordon_reason  VARCHAR,
    first_seen     TIMESTAMP,
    last_seen      TIMESTAMP
);

CREATE TABLE IF NOT EXISTS events (
    event_id  VARCHAR PRIMARY KEY,   -- content hash: re-importing the same event is a no-op
    ts        TIMESTAMP NOT NULL,
    source    VARCHAR NOT NULL,
    kind      VARCHAR NOT NULL,
    object    VARCHAR NOT NULL,
    reason    VARCHAR,
    message   VARCHAR,
    severity  VARCHAR,
    raw       JSON
);

CREATE TABLE IF NOT EXISTS diagnoses (
    job_id        VARCHAR NOT NULL,
    attempt       INTEGER NOT NULL,
    category      VARCHAR NOT NULL,
    owner         VARCHAR NOT NULL,
    confidence    DOUBLE,
    signature     VARCHAR,
    summary       VARCHAR,
    evidence      JSON,
    action_kind   VARCHAR,
    retryable     BOOLEAN,
    secondary     JSON,
    node_id       VARCHAR,           -- node the cause points at, when it points at one
    diagnosed_at  TIMESTAMP,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE IF NOT EXISTS actions (
    action_id   VARCHAR PRIMARY KEY,  -- deterministic idempotency key
    kind        VARCHAR NOT NULL,
    target      VARCHAR NOT NULL,
    because     JSON,
    mode        VARCHAR NOT NULL,
    state       VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    result      VARCHAR
);

CREATE TABLE IF NOT EXISTS tickets (
    ticket_id     VARCHAR PRIMARY KEY,
    "user"        VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    text          VARCHAR NOT NULL,
    job_ids       JSON,
    diagnoses     JSON,
    "similar"     JSON,
    draft_answer  VARCHAR,
    status        VARCHAR,
    category      VARCHAR
);

CREATE TABLE IF NOT EXISTS imports (
    import_id    VARCHAR PRIMARY KEY,
    format       VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    rows_read    BIGINT,
    rows_ok      BIGINT,
    rows_bad     BIGINT,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP
);
