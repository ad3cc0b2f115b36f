-- Model engine's `hosted_model_inference` tables as a 2026 database has them.
--
-- A test fixture, not something this tool ever runs against production: it lets
-- the tests and the sandbox command build a database with the same columns,
-- types and constraints as a real model engine deployment, so that a bundle copy
-- that forgets a column or breaks a flavor rule fails here first.
--
-- The schema name below is substituted by migrate/schema.py (quoted identifier),
-- so keep every reference schema-qualified and spelled exactly
-- hosted_model_inference.
--
-- Differences from 2024.sql: bundles.name is text (was varchar(50)); bundles gain
-- the multinode worker columns and the route/forwarder columns; endpoints gain
-- status_reason, task_expires_seconds and queue_message_timeout_seconds.

CREATE SCHEMA IF NOT EXISTS hosted_model_inference;

CREATE TABLE hosted_model_inference.bundles (
    id text PRIMARY KEY,
    name text,
    created_by varchar(24),
    created_at timestamptz DEFAULT now(),
    bundle_metadata json,
    model_artifact_ids text[],
    schema_location text,
    owner varchar(24) NOT NULL,
    flavor text,

    -- Legacy columns from before flavors existed; old rows still carry them.
    location text,
    version varchar(24),
    registered_model_name text,
    requirements json,
    env_params json,
    packaging_type text,
    app_config json,

    -- Artifact-like flavors (cloudpickle_artifact, zip_artifact).
    artifact_requirements text[],
    artifact_app_config json,
    artifact_framework_type text,
    artifact_pytorch_image_tag text,
    artifact_tensorflow_version text,
    artifact_image_repository text,
    artifact_image_tag text,
    artifact_location text,
    cloudpickle_artifact_load_predict_fn text,
    cloudpickle_artifact_load_model_fn text,
    zip_artifact_load_predict_fn_module_path text,
    zip_artifact_load_model_fn_module_path text,

    -- Runnable image flavors.
    runnable_image_repository text,
    runnable_image_tag text,
    runnable_image_command text[],
    runnable_image_predict_route text,
    runnable_image_healthcheck_route text,
    runnable_image_env json,
    runnable_image_protocol text,
    runnable_image_readiness_initial_delay_seconds integer,
    runnable_image_extra_routes text[],
    runnable_image_routes text[],
    runnable_image_forwarder_type text,
    runnable_image_worker_command text[],
    runnable_image_worker_env json,

    -- Streaming enhanced runnable image.
    streaming_enhanced_runnable_image_streaming_command text[],
    streaming_enhanced_runnable_image_streaming_predict_route text,

    -- Triton enhanced runnable image.
    triton_enhanced_runnable_image_model_repository text,
    triton_enhanced_runnable_image_model_replicas json,
    triton_enhanced_runnable_image_num_cpu numeric,
    triton_enhanced_runnable_image_commit_tag text,
    triton_enhanced_runnable_image_storage text,
    triton_enhanced_runnable_image_memory text,
    triton_enhanced_runnable_image_readiness_initial_delay_seconds integer,

    CONSTRAINT bundles_flavor_check CHECK (
        flavor IN (
            'runnable_image',
            'streaming_enhanced_runnable_image',
            'triton_enhanced_runnable_image',
            'cloudpickle_artifact',
            'zip_artifact'
        )
    ),
    CONSTRAINT bundles_runnable_image_command_iff_flavor CHECK (
        (flavor LIKE '%runnable_image') = (runnable_image_command IS NOT NULL)
    ),
    CONSTRAINT bundles_runnable_image_required CHECK (
        flavor NOT LIKE '%runnable_image'
        OR (
            runnable_image_repository IS NOT NULL
            AND runnable_image_tag IS NOT NULL
            AND runnable_image_protocol IS NOT NULL
            AND runnable_image_predict_route IS NOT NULL
            AND runnable_image_healthcheck_route IS NOT NULL
            AND runnable_image_readiness_initial_delay_seconds IS NOT NULL
        )
    ),
    CONSTRAINT bundles_streaming_command_iff_flavor CHECK (
        (flavor = 'streaming_enhanced_runnable_image')
        = (streaming_enhanced_runnable_image_streaming_command IS NOT NULL)
    ),
    CONSTRAINT bundles_streaming_predict_route_iff_flavor CHECK (
        (flavor = 'streaming_enhanced_runnable_image')
        = (streaming_enhanced_runnable_image_streaming_predict_route IS NOT NULL)
    ),
    CONSTRAINT bundles_triton_required_iff_flavor CHECK (
        (flavor = 'triton_enhanced_runnable_image')
        = (
            triton_enhanced_runnable_image_num_cpu IS NOT NULL
            AND triton_enhanced_runnable_image_commit_tag IS NOT NULL
            AND triton_enhanced_runnable_image_readiness_initial_delay_seconds IS NOT NULL
        )
    ),
    CONSTRAINT bundles_cloudpickle_iff_flavor CHECK (
        (flavor = 'cloudpickle_artifact')
        = (
            cloudpickle_artifact_load_predict_fn IS NOT NULL
            AND cloudpickle_artifact_load_model_fn IS NOT NULL
        )
    ),
    CONSTRAINT bundles_zip_iff_flavor CHECK (
        (flavor = 'zip_artifact')
        = (
            zip_artifact_load_predict_fn_module_path IS NOT NULL
            AND zip_artifact_load_model_fn_module_path IS NOT NULL
        )
    ),
    CONSTRAINT bundles_artifact_required CHECK (
        flavor NOT IN ('cloudpickle_artifact', 'zip_artifact')
        OR (
            artifact_requirements IS NOT NULL
            AND artifact_location IS NOT NULL
            AND artifact_framework_type IS NOT NULL
        )
    ),
    CONSTRAINT bundles_worker_command_runnable_only CHECK (
        runnable_image_worker_command IS NULL OR flavor LIKE '%runnable_image'
    )
);

CREATE INDEX ix_bundles_name ON hosted_model_inference.bundles (name);
CREATE INDEX ix_bundles_created_by ON hosted_model_inference.bundles (created_by);
CREATE INDEX ix_bundles_owner ON hosted_model_inference.bundles (owner);

CREATE TABLE hosted_model_inference.endpoints (
    id text PRIMARY KEY,
    name text,
    created_by varchar(24),
    created_at timestamptz DEFAULT now(),
    last_updated_at timestamptz DEFAULT now(),
    current_bundle_id text REFERENCES hosted_model_inference.bundles (id),
    endpoint_metadata jsonb,
    creation_task_id text,
    endpoint_type text DEFAULT 'async',
    destination text,
    endpoint_status text DEFAULT 'READY',
    owner varchar(24),
    public_inference boolean DEFAULT false,
    status_reason text,
    task_expires_seconds integer,
    queue_message_timeout_seconds integer
);

CREATE INDEX ix_endpoints_name ON hosted_model_inference.endpoints (name);
CREATE INDEX ix_endpoints_created_by ON hosted_model_inference.endpoints (created_by);
CREATE INDEX ix_endpoints_owner ON hosted_model_inference.endpoints (owner);
CREATE INDEX ix_endpoints_current_bundle_id ON hosted_model_inference.endpoints (current_bundle_id);
CREATE UNIQUE INDEX endpoint_name_created_by_uc
    ON hosted_model_inference.endpoints (name, created_by);
CREATE UNIQUE INDEX endpoint_name_llm_uc
    ON hosted_model_inference.endpoints (name)
    WHERE endpoint_metadata ? '_llm';
CREATE INDEX idx_endpoint_metadata
    ON hosted_model_inference.endpoints USING gin (endpoint_metadata);
