//! The Envoy integration suite, one test binary (one link, not one per file): real Envoy 1.40, real
//! nats-server / redis-server / framed echo server, real clients, real faults.

#[path = "suite/common.rs"]
mod common;
#[path = "suite/example_yaml.rs"]
mod example_yaml_cases;
#[path = "suite/failure_policy.rs"]
mod failure_policy_cases;
#[path = "suite/false_closes.rs"]
mod false_close_cases;
#[path = "suite/fault_matrix.rs"]
mod fault_matrix_cases;
#[path = "suite/live_config.rs"]
mod live_config_cases;
#[path = "suite/multi_worker.rs"]
mod multi_worker_cases;
#[path = "suite/mysql.rs"]
mod mysql_cases;
#[path = "suite/nats.rs"]
mod nats_cases;
#[path = "suite/ops_common.rs"]
mod ops_common;
#[path = "suite/postgres.rs"]
mod postgres_cases;
#[path = "suite/redis_blocking.rs"]
mod redis_blocking_cases;
#[path = "suite/redis.rs"]
mod redis_cases;
#[path = "suite/redis_pubsub.rs"]
mod redis_pubsub_cases;
#[path = "suite/runtimes.rs"]
mod runtime_cases;
