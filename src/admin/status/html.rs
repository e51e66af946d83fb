//! The status page's HTML, rendered from a [`Status`]: one self-contained document with
//! inline CSS, no scripts and no external assets (the admin port may have no internet, and
//! a page that loads nothing cannot leak the token to a third party). It reloads itself
//! with `<meta http-equiv="refresh">`. Every string from the snapshot goes through [`E`]
//! (HTML escaping): names come from config and the registry, but audit records and
//! approvals carry client-chosen strings.

use std::fmt::{self, Write as _};

use serde_json::Value;

use super::{Counts, Percentiles, Status, REFRESH_SECONDS};

/// Longest text shown in one cell (arguments of an audit record); the JSON has it whole.
const MAX_CELL_CHARS: usize = 240;

/// Escapes its string for HTML text and attribute values.
struct E<'a>(&'a str);

impl fmt::Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f4f6f9}\
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}\
header p{margin:4px 0 0;color:#b8c0cc;font-size:13px}header a{color:#9cc3ff}\
main{padding:8px 24px 24px}section{background:#fff;border:1px solid #dde2ea;border-radius:6px;margin:14px 0;padding:10px 14px}\
h2{font-size:15px;margin:2px 0 8px}h3{font-size:13px;margin:6px 0 4px;color:#4a5466}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}\
th{color:#4a5466;font-weight:600;background:#f8f9fb}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.tiles{display:flex;flex-wrap:wrap;gap:10px;background:none;border:none;padding:0}\
.tile{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:8px 14px;flex:1 1 150px}\
.tile b{display:block;font-size:20px;white-space:nowrap}.tile span{color:#4a5466;font-size:12px}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}\
.up{color:#0a7d32;font-weight:600}.down{color:#c0262d;font-weight:600}.unknown{color:#8a6d00;font-weight:600}\
.bad{color:#c0262d}.empty{color:#6b7588;margin:4px 0}code{font-size:12px;word-break:break-all}";

/// The whole page.
pub(super) fn render(s: &Status) -> String {
    let mut o = String::with_capacity(32 * 1024);
    // `write!` into a String cannot fail.
    let _ = write_page(&mut o, s);
    o
}

fn write_page(o: &mut String, s: &Status) -> fmt::Result {
    write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>mcp-gateway status</title><style>{STYLE}</style></head><body>\
<header><h1>mcp-gateway status</h1><p>version {} · generated {} · counts since start · \
refreshes every {REFRESH_SECONDS} s · <a href=\"/admin/status.json\">JSON</a></p></header><main>",
        E(s.version),
        E(&s.generated)
    )?;
    tiles(o, s)?;
    servers(o, s)?;
    calls(o, s)?;
    denials(o, s)?;
    upstreams(o, s)?;
    approvals(o, s)?;
    audit(o, s)?;
    o.write_str("</main></body></html>\n")
}

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// A latency in milliseconds, or a dash without samples.
fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 1.0 => format!("{v:.3}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn three(p: &Percentiles) -> String {
    format!("{} / {} / {}", ms(p.p50), ms(p.p90), ms(p.p99))
}

fn tiles(o: &mut String, s: &Status) -> fmt::Result {
    let tile = |o: &mut String, value: &str, label: &str| {
        write!(
            o,
            "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
            E(value),
            E(label)
        )
    };
    o.write_str("<section class=\"tiles\" id=\"summary\">")?;
    tile(o, &s.requests.total.to_string(), "requests")?;
    tile(o, &s.tool_calls.total.to_string(), "tools/call")?;
    tile(
        o,
        &pct(s.requests.error_rate()),
        &format!("error rate ({} errors)", s.requests.errors),
    )?;
    tile(
        o,
        &pct(s.requests.refusal_rate()),
        &format!("refused ({})", s.requests.refused),
    )?;
    tile(o, &three(&s.gateway_ms), "gateway ms p50 / p90 / p99")?;
    tile(o, &three(&s.upstream_ms), "upstream ms p50 / p90 / p99")?;
    o.write_str("</section>")
}

fn counts_cells(o: &mut String, c: &Counts) -> fmt::Result {
    write!(
        o,
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        c.total,
        c.ok,
        c.refused,
        c.errors,
        pct(c.error_rate())
    )
}

fn servers(o: &mut String, s: &Status) -> fmt::Result {
    o.write_str("<section id=\"servers\"><h2>Traffic by virtual server</h2>")?;
    if s.virtual_servers.is_empty() {
        return o.write_str("<p class=\"empty\">No requests yet.</p></section>");
    }
    o.write_str(
        "<table><tr><th>virtual server</th><th class=\"n\">requests</th><th class=\"n\">ok</th>\
<th class=\"n\">refused</th><th class=\"n\">errors</th><th class=\"n\">error rate</th><th class=\"n\">tools/call</th></tr>",
    )?;
    for r in &s.virtual_servers {
        write!(o, "<tr><td>{}</td>", E(&r.virtual_server))?;
        counts_cells(o, &r.requests)?;
        write!(o, "<td class=\"n\">{}</td></tr>", r.tool_calls)?;
    }
    o.write_str("</table></section>")
}

fn calls(o: &mut String, s: &Status) -> fmt::Result {
    o.write_str("<section id=\"calls\"><h2>Tool calls by virtual server and tool</h2>")?;
    if s.calls.is_empty() {
        return o.write_str("<p class=\"empty\">No tool calls yet.</p></section>");
    }
    o.write_str(
        "<table><tr><th>virtual server</th><th>tool</th><th class=\"n\">calls</th><th class=\"n\">ok</th>\
<th class=\"n\">refused</th><th class=\"n\">errors</th><th class=\"n\">error rate</th>\
<th class=\"n\">gateway ms p50 / p90 / p99</th><th class=\"n\">upstream ms p50 / p90 / p99</th></tr>",
    )?;
    for r in &s.calls {
        write!(
            o,
            "<tr><td>{}</td><td>{}</td>",
            E(&r.virtual_server),
            E(&r.tool)
        )?;
        counts_cells(o, &r.calls)?;
        write!(
            o,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            three(&r.gateway_ms),
            three(&r.upstream_ms)
        )?;
    }
    o.write_str("</table>")?;
    if s.calls_not_shown > 0 {
        write!(
            o,
            "<p class=\"empty\">{} more rows not shown (see /metrics).</p>",
            s.calls_not_shown
        )?;
    }
    o.write_str("</section>")
}

fn named_table(o: &mut String, title: &str, what: &str, rows: &[(String, u64)]) -> fmt::Result {
    write!(o, "<div><h3>{}</h3>", E(title))?;
    if rows.is_empty() {
        return o.write_str("<p class=\"empty\">none</p></div>");
    }
    write!(
        o,
        "<table><tr><th>{}</th><th class=\"n\">count</th></tr>",
        E(what)
    )?;
    for (name, n) in rows {
        write!(o, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", E(name))?;
    }
    o.write_str("</table></div>")
}

fn denials(o: &mut String, s: &Status) -> fmt::Result {
    let d = &s.denials;
    let pairs = |v: &[super::NamedCount]| -> Vec<(String, u64)> {
        v.iter().map(|n| (n.name.clone(), n.count)).collect()
    };
    o.write_str("<section id=\"denials\"><h2>Denials</h2><div class=\"grid\">")?;
    let steps: Vec<(String, u64)> = d
        .by_step
        .iter()
        .map(|r| (format!("{} · {}", r.step, r.virtual_server), r.count))
        .collect();
    named_table(o, "By decision step", "step · virtual server", &steps)?;
    named_table(o, "By policy rule", "rule", &pairs(&d.by_rule))?;
    named_table(o, "Quota limits hit", "limit", &pairs(&d.quota_limited))?;
    named_table(
        o,
        "Authentication failures",
        "reason",
        &pairs(&d.auth_failures),
    )?;
    named_table(o, "Approvals", "event", &pairs(&d.approval_events))?;
    o.write_str("</div></section>")
}

fn upstreams(o: &mut String, s: &Status) -> fmt::Result {
    o.write_str("<section id=\"upstreams\"><h2>Upstreams</h2>")?;
    if s.upstreams.is_empty() {
        return o.write_str("<p class=\"empty\">No upstreams configured.</p></section>");
    }
    o.write_str(
        "<table><tr><th>upstream</th><th>health</th><th class=\"n\">tools</th>\
<th class=\"n\">quarantined</th><th>last discovery error</th></tr>",
    )?;
    for u in &s.upstreams {
        write!(
            o,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            E(&u.name),
            u.health,
            u.health,
            u.tools,
            u.quarantined,
            E(u.error.as_deref().unwrap_or(""))
        )?;
    }
    o.write_str("</table></section>")
}

fn approvals(o: &mut String, s: &Status) -> fmt::Result {
    let a = &s.approvals;
    write!(
        o,
        "<section id=\"approvals\"><h2>Pending approvals ({})</h2>",
        a.pending.len()
    )?;
    if let Some(e) = &a.error {
        write!(
            o,
            "<p class=\"bad\">The approval store did not answer: {}</p>",
            E(e)
        )?;
    } else if a.pending.is_empty() {
        o.write_str("<p class=\"empty\">No call is waiting for an approver.</p>")?;
    } else {
        o.write_str(
            "<table><tr><th>id</th><th>tool</th><th>virtual server</th><th>who</th><th>agent</th>\
<th>asked</th><th>expires</th><th>arguments sha256</th></tr>",
        )?;
        for p in &a.pending {
            write!(
                o,
                "<tr><td><code>{}</code></td><td>{}.{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                E(&p.id),
                E(&p.upstream),
                E(&p.tool),
                E(p.virtual_server.as_deref().unwrap_or("–")),
                E(&p.subject),
                E(p.agent.as_deref().unwrap_or("–")),
                E(&p.created),
                E(&p.expires),
                E(p.arguments_sha256.get(..16).unwrap_or(&p.arguments_sha256)),
            )?;
        }
        o.write_str("</table>")?;
    }
    if a.approved_unused > 0 {
        write!(
            o,
            "<p class=\"empty\">{} approved call(s) not retried yet.</p>",
            a.approved_unused
        )?;
    }
    o.write_str("</section>")
}

/// A string field of `v` at `path`, or empty.
fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for p in path {
        match v.get(p) {
            Some(x) => v = x,
            None => return "",
        }
    }
    v.as_str().unwrap_or("")
}

/// At most [`MAX_CELL_CHARS`] characters of `s`, with an ellipsis when cut.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_CELL_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn audit(o: &mut String, s: &Status) -> fmt::Result {
    write!(
        o,
        "<section id=\"audit\"><h2>Recent audit records ({})</h2>",
        s.audit.records.len()
    )?;
    if !s.audit.enabled {
        return o.write_str(
            "<p class=\"empty\">The audit trail is off: add an audit section to the configuration.</p></section>",
        );
    }
    if s.audit.records.is_empty() {
        return o.write_str("<p class=\"empty\">No records written yet.</p></section>");
    }
    o.write_str(
        "<table><tr><th>time</th><th>who</th><th>where</th><th>what</th><th>decision</th>\
<th>outcome</th><th>arguments (redacted)</th><th class=\"n\">gateway / upstream ms</th></tr>",
    )?;
    for r in &s.audit.records {
        let who = [text(r, &["principal", "subject"]), text(r, &["agent"])]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" via ");
        let place = [text(r, &["virtual_server"]), text(r, &["upstream"])]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" → ");
        let what = match text(r, &["admin", "action"]) {
            "" => format!("{} {}", text(r, &["method"]), text(r, &["tool", "exposed"])),
            action => action.to_string(),
        };
        let mut decision = text(r, &["decision"]).to_string();
        for (k, sep) in [("refused_by", " by "), ("rule", ": ")] {
            let v = text(r, &[k]);
            if !v.is_empty() {
                decision.push_str(sep);
                decision.push_str(v);
            }
        }
        let status = r.get("status").and_then(Value::as_u64);
        let outcome = match status {
            Some(st) => format!("{} ({st})", text(r, &["outcome"])),
            None => text(r, &["outcome"]).to_string(),
        };
        let arguments = r
            .get("arguments")
            .map(|a| clip(&a.to_string()))
            .unwrap_or_default();
        let num = |k: &str| r.get(k).and_then(Value::as_f64);
        // The day is in the header; a record of that day shows its time of day.
        let time = text(r, &["time"]);
        let time = match (time.get(..11), s.generated.get(..11)) {
            (Some(day), Some(today)) if day == today => &time[11..],
            _ => time,
        };
        write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td>\
<td><code>{}</code></td><td class=\"n\">{} / {}</td></tr>",
            E(time),
            E(&who),
            E(&place),
            E(what.trim()),
            if decision.starts_with("refused") {
                "bad"
            } else {
                ""
            },
            E(&decision),
            E(&outcome),
            E(&arguments),
            ms(num("gateway_ms")),
            ms(num("upstream_ms")),
        )?;
    }
    o.write_str("</table></section>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::{ApprovalsPanel, AuditPanel, Denials, PendingApproval};

    fn status() -> Status {
        Status {
            generated: "2026-01-01T00:00:00Z".into(),
            version: "0.0.0",
            requests: Counts::default(),
            tool_calls: Counts::default(),
            gateway_ms: Percentiles::default(),
            upstream_ms: Percentiles::default(),
            virtual_servers: Vec::new(),
            calls: Vec::new(),
            calls_not_shown: 0,
            denials: Denials::default(),
            upstreams: Vec::new(),
            approvals: ApprovalsPanel::default(),
            audit: AuditPanel {
                enabled: true,
                records: Vec::new(),
            },
        }
    }

    #[test]
    fn every_client_string_is_escaped() {
        let evil = "<script>alert('x')</script>&\"";
        let mut s = status();
        s.approvals.pending.push(PendingApproval {
            id: "id".into(),
            virtual_server: Some(evil.into()),
            upstream: "up".into(),
            tool: "echo".into(),
            issuer: "i".into(),
            subject: evil.into(),
            agent: Some(evil.into()),
            created: "c".into(),
            expires: "e".into(),
            arguments_sha256: "ab".into(),
        });
        s.audit.records.push(serde_json::json!({
            "time": evil, "principal": {"subject": evil}, "method": "tools/call",
            "tool": {"exposed": evil}, "arguments": {"text": evil}, "decision": "refused",
            "rule": evil, "outcome": "rejected", "status": 403
        }));
        let page = render(&s);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
        assert!(!page.contains("<script>"));
        assert_eq!(E("a&b<c>").to_string(), "a&amp;b&lt;c&gt;");
    }

    #[test]
    fn empty_panels_say_so_and_long_cells_are_clipped() {
        let page = render(&status());
        for says in [
            "No requests yet",
            "No tool calls yet",
            "No call is waiting",
            "No records written yet",
        ] {
            assert!(page.contains(says), "{says}");
        }
        assert!(page.contains("http-equiv=\"refresh\" content=\"5\""));
        let long = "é".repeat(MAX_CELL_CHARS + 10);
        assert_eq!(clip(&long).chars().count(), MAX_CELL_CHARS + 1);
        assert_eq!(ms(None), "–");
        assert_eq!(ms(Some(0.0421)), "0.042");
        assert_eq!(ms(Some(12.34)), "12.3");
    }
}
