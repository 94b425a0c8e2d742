//! The OpenAPI document of the whole surface, served at `{prefix}/openapi.json` and browsable
//! at `/docs` (Swagger UI, assets embedded in the binary).
//!
//! Operations are written down once, in [`OPERATIONS`]: method, path, tag, summary,
//! parameters, body and answer. Typed bodies come from the `ToSchema` derives of the
//! structs the handlers use; the legacy routes whose bodies are free-form documents (config
//! files, MaiBot rows) are described as objects. A test checks that every operation here is
//! answered by the server and that every call the frontend makes is documented.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths, Ref,
    RefOr, Required, ResponseBuilder, Schema,
};
use utoipa::{PartialSchema, ToSchema};

/// What a request body or an answer is.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Nothing (or nothing worth describing).
    None,
    /// A free-form JSON object, described in words.
    Object(&'static str),
    /// A named schema from the components.
    Named(&'static str),
}

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn http(self) -> HttpMethod {
        match self {
            Get => HttpMethod::Get,
            Post => HttpMethod::Post,
            Put => HttpMethod::Put,
            Patch => HttpMethod::Patch,
            Delete => HttpMethod::Delete,
        }
    }

    fn lower(self) -> &'static str {
        match self {
            Get => "get",
            Post => "post",
            Put => "put",
            Patch => "patch",
            Delete => "delete",
        }
    }
}

/// Types of query parameters.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Integer,
    Boolean,
}

/// A parameter beyond the path's own `{…}` segments.
#[derive(Debug, Clone, Copy)]
struct Query {
    name: &'static str,
    kind: Kind,
    doc: &'static str,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
struct Op {
    method: Method,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    query: &'static [Query],
    body: Body,
    answer: Body,
}

const fn op(method: Method, path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        query: &[],
        body: Body::None,
        answer: Body::None,
    }
}

impl Op {
    const fn body(mut self, b: Body) -> Self {
        self.body = b;
        self
    }
    const fn answer(mut self, b: Body) -> Self {
        self.answer = b;
        self
    }
    const fn query(mut self, q: &'static [Query]) -> Self {
        self.query = q;
        self
    }
}

use Method::{Delete, Get, Patch, Post, Put};

const SINCE: Query = Query {
    name: "since",
    kind: Kind::Integer,
    doc: "Return only records with a sequence number at or after this one.",
};

/// Every operation of the API (paths relative to the prefix).
const OPERATIONS: &[Op] = &[
    // System.
    op(Get, "/system/health", "system", "Liveness and uptime"),
    op(Get, "/system/metrics", "system", "Host metrics from the latest background sample (CPU, memory, disks, network rates)"),
    op(Get, "/version/current", "system", "The running launcher's version"),
    op(Get, "/version/check", "system", "Whether a newer launcher exists (fields both flat and under `data`)"),
    op(Get, "/version/history", "system", "Release history"),
    // Instances (legacy routes the frontend calls).
    op(Get, "/instances", "instances", "Every instance with live state and statistics").answer(Body::Named("InstanceList")),
    op(Get, "/instances/stats", "instances", "Instance counts by state"),
    op(Post, "/instances/add", "instances", "Register an existing MaiBot installation (never deleted from disk)")
        .body(Body::Named("AddExistingRequest")),
    op(Get, "/instance/{id}/start", "instances", "Start an instance (legacy GET)"),
    op(Get, "/instance/{id}/stop", "instances", "Stop an instance gracefully (legacy GET)"),
    op(Get, "/instance/{id}/restart", "instances", "Confirmed stop, then start (legacy GET)"),
    op(Delete, "/instance/{id}/delete", "instances", "Stop and delete an instance; folders the launcher created move to the trash (`trash_entry`)")
        .query(&[Query { name: "remove_files", kind: Kind::Boolean, doc: "Move launcher-created folders to the trash (default true here)." }]),
    // Instances (modern).
    op(Get, "/instances/{id}", "instances", "One instance with components and statistics").answer(Body::Named("InstanceView")),
    op(Delete, "/instances/{id}", "instances", "Stop and delete an instance; answers the trash entry of its folders (`trash_entry`)")
        .query(&[Query { name: "remove_files", kind: Kind::Boolean, doc: "Also move launcher-created folders to the trash (default false)." }]),
    op(Post, "/instances/{id}/start", "instances", "Start every component in order").answer(Body::Named("InstanceView")),
    op(Post, "/instances/{id}/stop", "instances", "Stop every component in reverse order (confirmed)").answer(Body::Named("InstanceView")),
    op(Post, "/instances/{id}/restart", "instances", "Confirmed stop, then start").answer(Body::Named("InstanceView")),
    op(Post, "/instances/{id}/kill", "instances", "SIGKILL every component's process group").answer(Body::Named("InstanceView")),
    op(Get, "/instances/{id}/metrics", "instances", "Per-instance CPU, memory and threads: latest sample and short history"),
    op(Get, "/instances/{id}/components/{component}/logs", "instances", "Buffered output records of one component")
        .query(&[SINCE, Query { name: "tail", kind: Kind::Integer, doc: "The last N records (default 1000, at most 10000)." }]),
    op(Get, "/ws/{session}", "streams", "Terminal WebSocket of `<instanceId>_<component>`: status line, scrollback as `output`, then live; `input`, `resize`, `ping`, `request_history`"),
    op(Get, "/events", "streams", "Event WebSocket: `{type, stream, seq, ts, data}` for job logs and progress, instance state and component output; `subscribe` with `streams` and `since` replays from a sequence"),
    // Trash.
    op(Get, "/trash", "trash", "Deleted instances whose folders are in the trash, newest first").answer(Body::Named("TrashList")),
    op(Post, "/trash/{entry_id}/restore", "trash", "Put an entry's folders back and register the instance again (409 when a path is taken or a folder gone; nothing overwritten)")
        .answer(Body::Named("RestoreView")),
    op(Delete, "/trash/{entry_id}", "trash", "Purge one entry and its folders for good"),
    // Deploy and jobs.
    op(Get, "/deploy/versions", "deploy", "MaiBot versions from git tags and branches (cached; says when stale)"),
    op(Get, "/versions", "deploy", "MaiBot versions with release family, Python requirement, host readiness and the paired adapter"),
    op(Get, "/deploy/services", "deploy", "Components that can be deployed beside MaiBot"),
    op(Post, "/deploy/deploy", "deploy", "Deploy from the frontend's wizard (its EULA checkbox counts as acceptance); returns the job id")
        .body(Body::Object("The wizard's body: instance_name, install_path, version, port, install_services[]")),
    op(Get, "/deploy/install-status/{id}", "deploy", "Job status in the wizard's shape, by instance id or job id: numbered logs, the last 500 cumulative lines, or a page after `since`").query(&[SINCE]),
    op(Post, "/deploy", "deploy", "Start a deploy job").body(Body::Named("DeployRequest")),
    op(Get, "/jobs", "deploy", "Recent deploy jobs"),
    op(Get, "/jobs/{id}", "deploy", "One job: status, phase, progress, error, components"),
    op(Post, "/jobs/{id}/cancel", "deploy", "Cancel a job: kills its running step, removes what it created"),
    op(Get, "/jobs/{id}/logs", "deploy", "A job's log lines").query(&[SINCE]),
    op(Post, "/inspect", "deploy", "What is at a path (MaiBot, adapter, version, venv, configs); pure read")
        .body(Body::Object("{\"path\": \"/abs/or/~/path\"}")),
    // Config files.
    op(Get, "/resources/{id}/{kind}/get", "configs", "A config file as a JSON document (`kind`: config, lpmm, model, env, adapter)"),
    op(Post, "/resources/{id}/{kind}/update", "configs", "Replace a config file's document; comments and order of untouched keys are kept; atomic with one .bak")
        .body(Body::Object("The whole document")),
    op(Patch, "/resources/{id}/{kind}", "configs", "Merge a partial document into a config file")
        .body(Body::Object("The keys to change")),
    op(Get, "/resources/{id}/adapter/napcat/get", "configs", "The napcat adapter's config.toml as a document"),
    op(Post, "/resources/{id}/adapter/napcat/update", "configs", "Replace the napcat adapter's config document")
        .body(Body::Object("The whole document")),
    // MaiBot database resources.
    op(Get, "/resource/all", "resources", "Every instance's MaiBot database: where it is, whether it opens"),
    op(Get, "/resource/{id}/info", "resources", "One instance's MaiBot database"),
    op(Post, "/resource/{id}/emoji", "resources", "Create an emoji row; returns its id").body(Body::Object("Emoji columns")),
    op(Post, "/resource/{id}/emoji/hash", "resources", "Emoji by hash").body(Body::Object("{\"emoji_hash\": …}")),
    op(Post, "/resource/{id}/emoji/search", "resources", "Search emoji (limit ≤ 1000)").body(Body::Object("Filters, limit, offset")),
    op(Post, "/resource/{id}/emoji/batch", "resources", "A page of emoji (batch_size ≤ 1000)").body(Body::Object("batch_size, offset, filters")),
    op(Post, "/resource/{id}/emoji/count", "resources", "Count emoji").body(Body::Object("Filters")),
    op(Get, "/resource/{id}/emoji/{emoji_id}", "resources", "One emoji"),
    op(Put, "/resource/{id}/emoji/{emoji_id}", "resources", "Update an emoji (known columns only)").body(Body::Object("Columns to change")),
    op(Delete, "/resource/{id}/emoji/{emoji_id}", "resources", "Delete an emoji row"),
    op(Post, "/resource/{id}/emoji/{emoji_id}/usage", "resources", "Count one use of an emoji"),
    op(Post, "/resource/{id}/emoji/{emoji_id}/query", "resources", "Count one query of an emoji"),
    op(Get, "/resource/{id}/emoji/{emoji_id}/image", "resources", "The emoji's image file (only inside the instance's directory)"),
    op(Post, "/resource/{id}/person", "resources", "Create a person row; returns its id").body(Body::Object("person_info columns")),
    op(Post, "/resource/{id}/person/platform", "resources", "Person by platform and user id").body(Body::Object("{\"platform\": …, \"user_id\": …}")),
    op(Post, "/resource/{id}/person/search", "resources", "Search persons (limit ≤ 1000)").body(Body::Object("Filters, limit, offset")),
    op(Post, "/resource/{id}/person/batch", "resources", "A page of persons").body(Body::Object("batch_size, offset, filters")),
    op(Post, "/resource/{id}/person/count", "resources", "Count persons").body(Body::Object("Filters")),
    op(Get, "/resource/{id}/person/record/{record_id}", "resources", "Person by record id"),
    op(Get, "/resource/{id}/person/{person_id}", "resources", "Person by person id"),
    op(Put, "/resource/{id}/person/{person_id}", "resources", "Update a person (known columns only)").body(Body::Object("Columns to change")),
    op(Delete, "/resource/{id}/person/{person_id}", "resources", "Delete a person row"),
    op(Post, "/resource/{id}/person/{person_id}/interaction", "resources", "Record an interaction with a person").body(Body::Object("Interaction fields")),
];

/// `{name}` segments of a path.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn json_content(body: Body) -> Option<utoipa::openapi::Content> {
    match body {
        Body::None => None,
        Body::Object(doc) => Some(
            ContentBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .description(Some(doc)),
                ))
                .build(),
        ),
        Body::Named(name) => Some(
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(name)))
                .build(),
        ),
    }
}

fn operation(o: &Op) -> utoipa::openapi::path::Operation {
    let mut b = OperationBuilder::new()
        .summary(Some(o.summary))
        .tag(o.tag)
        .operation_id(Some(format!(
            "{}{}",
            o.method.lower(),
            o.path.replace(['/', '{', '}', '-'], "_")
        )));
    for name in path_params(o.path) {
        b = b.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    for q in o.query {
        b = b.parameter(
            ParameterBuilder::new()
                .name(q.name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(q.doc))
                .schema(Some(ObjectBuilder::new().schema_type(match q.kind {
                    Kind::Integer => Type::Integer,
                    Kind::Boolean => Type::Boolean,
                }))),
        );
    }
    if let Some(c) = json_content(o.body) {
        b = b.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", c)
                .required(Some(Required::True))
                .build(),
        ));
    }
    let mut ok = ResponseBuilder::new().description("Success");
    if let Some(c) = json_content(o.answer) {
        ok = ok.content("application/json", c);
    }
    let err = ResponseBuilder::new()
        .description("Refused or failed: `{detail, code}` with the HTTP status saying which")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
    b.response("200", ok).response("default", err).build()
}

fn schema_of<T: ToSchema + PartialSchema>() -> (String, RefOr<Schema>) {
    (T::name().into_owned(), T::schema())
}

/// The OpenAPI document for the API mounted at `prefix`.
pub fn document(prefix: &str, version: &str) -> OpenApi {
    let mut paths = Paths::new();
    for o in OPERATIONS {
        let item = PathItem::new(o.method.http(), operation(o));
        let path = format!("{prefix}{}", o.path);
        match paths.paths.get_mut(&path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                paths.paths.insert(path, item);
            }
        }
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "Needed when the launcher is bound beyond loopback, and on loopback from \
                     another OS user's connection (`mailauncher token`)",
                ))
                .build(),
        ),
    );
    for (name, schema) in [
        schema_of::<crate::ApiError>(),
        schema_of::<crate::routes::InstanceList>(),
        schema_of::<crate::routes::InstanceView>(),
        schema_of::<crate::routes::ComponentView>(),
        schema_of::<crate::routes::PortView>(),
        schema_of::<crate::routes::ExitView>(),
        schema_of::<crate::routes::FailureView>(),
        schema_of::<crate::routes::AddExistingRequest>(),
        schema_of::<crate::routes::ServiceRequest>(),
        schema_of::<crate::routes::TrashList>(),
        schema_of::<crate::routes::TrashEntryView>(),
        schema_of::<crate::routes::TrashFolderView>(),
        schema_of::<crate::routes::RestoreView>(),
        schema_of::<launcher_core::deploy::DeployRequest>(),
        schema_of::<launcher_core::deploy::ComponentRequest>(),
    ] {
        components = components.schema(name, schema);
    }
    let tags = [
        ("system", "Health, host metrics, versions"),
        (
            "instances",
            "Registered MaiBot instances and their processes",
        ),
        ("streams", "WebSockets: terminals and events"),
        ("deploy", "Versions, deploy jobs, inspect-path"),
        (
            "trash",
            "Deleted instances' folders, kept `deploy.trash_days` days",
        ),
        ("configs", "Config files that keep their comments"),
        (
            "resources",
            "The instance's own MaiBot database (emoji, persons)",
        ),
    ]
    .map(|(n, d)| TagBuilder::new().name(n).description(Some(d)).build());
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("MaiLauncher")
                .version(version)
                .description(Some(
                    "The local MaiLauncher daemon: deploys, runs and watches MaiBot instances. \
                     Errors are `{\"detail\": …, \"code\": …}` with an HTTP status.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .tags(Some(tags))
        .build()
}
