//! The launcher's own tables: instances and their components, deploy jobs with their
//! append-only logs, and instance runs. Rows are owned by a tenant (the local launcher
//! uses one tenant) and children point at their parent with `(tenant_id, id)` keys.

use crate::helpers::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES_CHILD_FIRST: &[&str] = &[
    "instance_runs",
    "deploy_job_logs",
    "deploy_jobs",
    "instance_components",
    "instances",
];

fn parent_instance(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_instance"))
        .from(table, ("tenant_id", "instance_id"))
        .to("instances", ("tenant_id", "id"))
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut instances = tenant_table(
            "instances",
            id_pk("id"),
            vec![
                string_len("name", 100),
                text("install_path"),
                string_len("version", 64),
                integer_null("maibot_port"),
                // false for an instance added from an existing directory: never deleted from disk.
                flag("owned", false),
                one_of("desired_state", 16, "stopped", &["running", "stopped"]),
                string_len("observed_state", 16).default("stopped").take(),
                one_of(
                    "restart_policy",
                    16,
                    "on-failure",
                    &["never", "on-failure", "always"],
                ),
                count("start_count", 0),
                count("crash_count", 0),
                count("total_runtime_ms", 0),
                ts_null("last_start_at"),
                integer_null("last_exit_code"),
                integer_null("last_exit_signal"),
                ts_null("last_exit_at"),
                text_null("last_exit_reason"),
            ],
        );
        instances.index(&mut uniq("instances", &["tenant_id", "id"]));
        instances.foreign_key(
            ForeignKey::create()
                .name("fk_instances_tenant")
                .from("instances", "tenant_id")
                .to("tenants", "id")
                .on_delete(ForeignKeyAction::Cascade),
        );

        let mut components = tenant_table(
            "instance_components",
            big_pk_auto("id"),
            vec![
                id_ref("instance_id"),
                string_len("kind", 32),
                text("path"),
                integer_null("port"),
                json_doc("argv"),
                json_doc("env"),
                string_len("observed_state", 16).default("stopped").take(),
                big_integer_null("pid"),
                // Process start time (clock ticks since boot on Linux) so a reused pid
                // is never mistaken for our child.
                big_integer_null("pid_start_time"),
            ],
        );
        components.foreign_key(&mut parent_instance("instance_components"));

        let mut jobs = tenant_table(
            "deploy_jobs",
            id_pk("id"),
            vec![
                id_ref_null("instance_id"),
                string_len("kind", 32).default("deploy").take(),
                one_of(
                    "status",
                    16,
                    "queued",
                    &["queued", "running", "succeeded", "failed", "canceled"],
                ),
                string_len("phase", 32).default("validate").take(),
                double("progress")
                    .default(0.0)
                    .check(Expr::col("progress").between(0.0, 100.0))
                    .take(),
                text_null("error"),
                json_doc("request"),
                json_doc("created_paths"),
                ts_null("started_at"),
                ts_null("finished_at"),
            ],
        );
        jobs.index(&mut uniq("deploy_jobs", &["tenant_id", "id"]));
        jobs.foreign_key(
            ForeignKey::create()
                .name("fk_deploy_jobs_tenant")
                .from("deploy_jobs", "tenant_id")
                .to("tenants", "id")
                .on_delete(ForeignKeyAction::Cascade),
        );

        let logs = Table::create()
            .table("deploy_job_logs")
            .col(big_pk_auto("id"))
            .col(id_ref("tenant_id"))
            .col(id_ref("job_id"))
            .col(big_integer("seq"))
            .col(ts_now("ts"))
            .col(string_len("stream", 16).default("stdout").take())
            .col(text("line"))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_deploy_job_logs_job")
                    .from("deploy_job_logs", ("tenant_id", "job_id"))
                    .to("deploy_jobs", ("tenant_id", "id"))
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .take();

        let mut runs = tenant_table(
            "instance_runs",
            big_pk_auto("id"),
            vec![
                id_ref("instance_id"),
                string_len("component", 32),
                big_integer_null("pid"),
                timestamp_with_time_zone("started_at"),
                ts_null("stopped_at"),
                integer_null("exit_code"),
                integer_null("exit_signal"),
                text_null("reason"),
            ],
        );
        runs.foreign_key(&mut parent_instance("instance_runs"));

        create_all(
            m,
            vec![instances, components, jobs, logs, runs],
            vec![
                uniq("instances", &["tenant_id", "name"]),
                uniq("instance_components", &["tenant_id", "instance_id", "kind"]),
                idx("deploy_jobs", &["tenant_id", "created_at"]),
                uniq("deploy_job_logs", &["tenant_id", "job_id", "seq"]),
                idx("instance_runs", &["tenant_id", "instance_id", "started_at"]),
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_all(m, TABLES_CHILD_FIRST).await
    }
}
