//! Every port a component listens on, and the ports its peers listen on for it.
//!
//! One instance opens several ports (MaiBot's main server and its WebUI; the adapter's
//! NapCat-facing server; NapCat's forward WebSocket for the plugin adapter). Until now only
//! one per component was recorded (`port`), so a second instance was given the same WebUI
//! port and crash-looped. `ports` holds them all as a JSON array of
//! `{"role": …, "port": …, "listens": bool}`; `port` stays the component's main port.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InstanceComponents {
    Table,
    Ports,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(InstanceComponents::Table)
                    .add_column(
                        ColumnDef::new(InstanceComponents::Ports)
                            .json_binary()
                            .not_null()
                            .default(Expr::val("[]")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(InstanceComponents::Table)
                    .drop_column(InstanceComponents::Ports)
                    .to_owned(),
            )
            .await
    }
}
