-- Schema v3: GPU and node utilization sampled from Prometheus (DCGM exporter, node exporter) by
-- the Prometheus source (docs/run-on-cluster.md). One row per sample; re-reading the same sample
-- replaces it, so a poll repeated over an overlapping range changes nothing.
CREATE TABLE IF NOT EXISTS gpu_usage (
    ts         TIMESTAMP NOT NULL,   -- sample time, UTC
    node_id    VARCHAR NOT NULL,
    gpu        VARCHAR NOT NULL,     -- GPU index on the node ('' for a node-wide metric)
    metric     VARCHAR NOT NULL,     -- gpu_util, sm_active, mem_copy_util, power_watts, ...
    value      DOUBLE NOT NULL,      -- ratios 0..1, watts, degrees Celsius (as the catalog scales)
    uuid       VARCHAR,
    gpu_model  VARCHAR,
    PRIMARY KEY (ts, node_id, gpu, metric)
);
