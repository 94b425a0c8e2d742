//! The event WebSocket end to end: instance state changes and component output live, replay
//! from a sequence after a reconnect, and refusal of what it cannot serve.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, fake_maibot, listen_on, spawn_app};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn add_instance(app: &App, name: &str, port: u16) -> String {
    let main = fake_maibot(&app.home.path().join("bots"), name);
    listen_on(&main, port);
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": name, "maibot_path": main, "port": port}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["instance_id"].as_str().unwrap().to_owned()
}

fn is_state(m: &Value, id: &str, state: &str) -> bool {
    m["type"] == "instance.state" && m["data"]["instance_id"] == id && m["data"]["state"] == state
}

#[test]
fn state_changes_and_output_stream_live_and_replay_after_reconnect() {
    let app = spawn_app();
    let id = add_instance(&app, "eventful", 28_101);
    let other = add_instance(&app, "quiet", 28_102);
    let output = format!("output:{id}_main");

    let mut ws = app.events();
    ws.send(json!({"type": "subscribe", "streams": [format!("instance:{id}"), output]}));
    let ack = ws.until(WAIT, "subscribed", |m| m["type"] == "subscribed");
    assert_eq!(ack["data"]["streams"].as_array().unwrap().len(), 2);

    assert_eq!(
        app.request("POST", &format!("/instances/{id}/start"), &[], None)
            .status,
        200
    );
    assert_eq!(
        app.request("POST", &format!("/instances/{other}/start"), &[], None)
            .status,
        200
    );
    // The state change comes through the recorder and the greeting straight from the
    // terminal: either may arrive first.
    let got = ws.until_each(
        WAIT,
        "running event and greeting output",
        &[&|m| is_state(m, &id, "running"), &|m| {
            m["type"] == "component.output"
                && m["data"]["text"].as_str().unwrap().contains("maibot ready")
        }],
    );
    let (running, first) = (&got[0], &got[1]);
    assert_eq!(running["stream"], format!("instance:{id}"));
    assert!(running["seq"].as_u64().unwrap() >= 1);
    assert!(running["ts"].is_string());
    assert!(running["data"]["pid"].is_u64());

    assert_eq!(first["stream"], format!("output:{id}_main"));
    assert_eq!(
        first["seq"], 1,
        "output seq is the component's record number"
    );

    // Input over the terminal socket shows up on the event socket as output.
    let mut term = app.ws(&format!("{id}_main"));
    term.send(json!({"type": "input", "data": "hello events\n"}));
    ws.until(WAIT, "echo", |m| {
        m["type"] == "component.output"
            && m["data"]["text"]
                .as_str()
                .unwrap()
                .contains("echo:hello events")
    });
    let seen = running["seq"].as_u64().unwrap();
    drop(ws);

    // Changes while no one listens are replayed from the last seen seq, and only for the
    // streams asked for: the other instance's events never appear.
    assert_eq!(
        app.request("POST", &format!("/instances/{id}/stop"), &[], None)
            .status,
        200
    );
    assert_eq!(
        app.request("POST", &format!("/instances/{other}/stop"), &[], None)
            .status,
        200
    );
    let mut ws = app.events();
    ws.send(json!({"type": "subscribe", "streams": ["instances"], "since": seen}));
    // Each instance records its own changes, so the two stops may be sequenced either way.
    let got = ws.until_each(
        WAIT,
        "both replayed stops",
        &[
            &|m| {
                assert!(
                    m["type"] != "instance.state" || m["seq"].as_u64().unwrap() > seen,
                    "replay starts after the given seq: {m}"
                );
                is_state(m, &id, "stopped")
            },
            &|m| is_state(m, &other, "stopped"),
        ],
    );
    assert!(got[0]["seq"].as_u64().unwrap() > seen);

    // Output replays from a record number too.
    let mut ws = app.events();
    ws.send(json!({"type": "subscribe", "streams": [format!("output:{id}_main")], "since": 0}));
    let replayed = ws.until(WAIT, "replayed output", |m| m["type"] == "component.output");
    assert_eq!(replayed["seq"], 1);
}

#[test]
fn bad_subscriptions_are_refused_with_a_code() {
    let app = spawn_app();
    let mut ws = app.events();
    for (msg, code) in [
        (
            json!({"type": "subscribe", "streams": ["nonsense"]}),
            "unknown_stream",
        ),
        (
            json!({"type": "subscribe", "streams": ["output:../../etc_main"]}),
            "unknown_stream",
        ),
        (json!({"type": "subscribe", "streams": []}), "bad_message"),
        (
            json!({"type": "subscribe", "streams": ["output:abcdef_main"]}),
            "not_found",
        ),
        (json!({"type": "dance"}), "bad_message"),
    ] {
        ws.send(msg.clone());
        let e = ws.until(WAIT, "error", |m| m["type"] == "error");
        assert_eq!(e["data"]["code"], code, "{msg} -> {e}");
        assert!(e["data"]["detail"].is_string());
    }
    ws.send(json!({"type": "ping", "timestamp": 42}));
    let pong = ws.until(WAIT, "pong", |m| m["type"] == "pong");
    assert_eq!(pong["data"]["timestamp"], 42);

    // A foreign page gets no event socket either.
    assert!(
        app.ws_path("/events", &[("Origin", "https://evil.example")])
            .is_err()
    );
}
