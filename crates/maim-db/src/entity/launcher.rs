//! The launcher's own tables, owned by a tenant and reached through
//! [`crate::scoped::ScopedTable`] with a [`crate::TenantScope`].

/// Registered MaiBot instances.
pub mod instances {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One instance with its desired/observed state and runtime statistics.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "instances")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub install_path: String,
        pub version: String,
        pub maibot_port: Option<i32>,
        pub owned: bool,
        pub desired_state: String,
        pub observed_state: String,
        pub restart_policy: String,
        pub start_count: i64,
        pub crash_count: i64,
        pub total_runtime_ms: i64,
        pub last_start_at: Option<DateTimeUtc>,
        pub last_exit_code: Option<i32>,
        pub last_exit_signal: Option<i32>,
        pub last_exit_at: Option<DateTimeUtc>,
        pub last_exit_reason: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl crate::scoped::Scoped for Entity {
        type Scope = crate::TenantScope;
        const NATURAL_KEY: &'static [&'static str] = &["name"];
    }
}

/// Components of an instance (main, napcat-ada, napcat, …).
pub mod instance_components {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One component: its directory, port, argv and last known process.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "instance_components")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub instance_id: String,
        pub kind: String,
        pub path: String,
        pub port: Option<i32>,
        pub argv: Json,
        pub env: Json,
        pub observed_state: String,
        pub pid: Option<i64>,
        pub pid_start_time: Option<i64>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Every port of the component: `[{"role", "port", "listens"}]` (migration 6).
        pub ports: Json,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl crate::scoped::Scoped for Entity {
        type Scope = crate::TenantScope;
        const NATURAL_KEY: &'static [&'static str] = &["instance_id", "kind"];
    }
}

/// Deploy (and other long-running) jobs.
pub mod deploy_jobs {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One job.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "deploy_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub instance_id: Option<String>,
        pub kind: String,
        pub status: String,
        pub phase: String,
        pub progress: f64,
        pub error: Option<String>,
        pub request: Json,
        pub created_paths: Json,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl crate::scoped::Scoped for Entity {
        type Scope = crate::TenantScope;
        const NATURAL_KEY: &'static [&'static str] = &[];
    }
}

/// Append-only job log lines with per-job sequence numbers.
pub mod deploy_job_logs {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One log line.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "deploy_job_logs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub job_id: String,
        pub seq: i64,
        pub ts: DateTimeUtc,
        pub stream: String,
        pub line: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl crate::scoped::Scoped for Entity {
        type Scope = crate::TenantScope;
        const NATURAL_KEY: &'static [&'static str] = &["job_id", "seq"];
    }
}

/// One record per process run of a component.
pub mod instance_runs {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One run.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "instance_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub instance_id: String,
        pub component: String,
        pub pid: Option<i64>,
        pub started_at: DateTimeUtc,
        pub stopped_at: Option<DateTimeUtc>,
        pub exit_code: Option<i32>,
        pub exit_signal: Option<i32>,
        pub reason: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl crate::scoped::Scoped for Entity {
        type Scope = crate::TenantScope;
        const NATURAL_KEY: &'static [&'static str] = &[];
    }
}
