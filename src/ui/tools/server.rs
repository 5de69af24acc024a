//! The Redis tab: INFO of every master read every [`POLL_MS`] once the tab
//! was opened, tiles with the latest figures, trend plots over the window's
//! session (ops/s, memory, hit rate, clients; per node and totalled on a
//! cluster), the per-node table and the key distribution of a small sample.

use std::collections::VecDeque;

use eframe::egui;
use egui::{Color32, RichText};

use crate::backend::{Command, ToolsCommand};
use crate::redis_admin::{RedisInfo, ServerStats};
use crate::redis_conn::Topology;
use crate::ui::model::Model;
use crate::ui::widgets::plots::{Series, bar_list_ui, time_series_ui};
use crate::ui::widgets::tiles::tile_ui;
use crate::ui::{format, theme};

/// Time between two INFO reads.
pub const POLL_MS: i64 = 2_000;
/// Keys sampled for the distribution by pattern at each read.
pub const SAMPLE_KEYS: usize = 2_000;
/// Samples kept for the plots (an hour at one every 2 s).
const MAX_SAMPLES: usize = 1_800;
/// Colours of per-node lines (the total is the accent colour).
const NODE_COLORS: [Color32; 6] = [
    Color32::from_rgb(0x4e, 0x9a, 0xf0),
    Color32::from_rgb(0xe0, 0x8a, 0x3c),
    Color32::from_rgb(0x5c, 0xb8, 0x5c),
    Color32::from_rgb(0xb0, 0x6c, 0xd8),
    Color32::from_rgb(0xd0, 0x5c, 0x7c),
    Color32::from_rgb(0x3c, 0xb8, 0xb0),
];

/// A plot: id, title, series, pinned y range.
type PlotSpec = (&'static str, &'static str, Vec<Series>, Option<(f64, f64)>);

/// The figures of one node (or the total) at one read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    ops: f64,
    memory_mb: f64,
    hits: u64,
    misses: u64,
    clients: f64,
}

impl Figures {
    fn of(s: &ServerStats) -> Figures {
        Figures {
            ops: s.ops_per_sec as f64,
            memory_mb: s.used_memory_bytes as f64 / (1024.0 * 1024.0),
            hits: s.keyspace_hits,
            misses: s.keyspace_misses,
            clients: s.connected_clients as f64,
        }
    }
}

/// One read.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    /// Local clock time of the answer.
    at_ms: i64,
    /// The total over the masters.
    total: Figures,
    /// Per node, by address.
    nodes: Vec<(String, Figures)>,
}

/// What the Redis tab holds.
#[derive(Debug, Default)]
pub struct ServerView {
    /// The latest answer.
    pub latest: Option<RedisInfo>,
    /// Reads of this session, oldest first (at most an hour).
    samples: VecDeque<Sample>,
    /// The tab was opened: keep reading for the session's trends.
    pub watching: bool,
    /// When the last read was asked for (local clock), if any.
    last_poll_ms: Option<i64>,
    /// The last read failed, and why.
    pub error: Option<String>,
}

impl ServerView {
    /// Folds in an answer.
    pub fn apply(&mut self, info: RedisInfo, now_ms: i64) {
        self.error = None;
        let sample = Sample {
            at_ms: now_ms,
            total: Figures::of(&info.total),
            nodes: info
                .nodes
                .iter()
                .map(|n| (n.addr.clone(), Figures::of(&n.stats)))
                .collect(),
        };
        // A manual clock (tests) may not move: one sample per instant.
        if self.samples.back().is_some_and(|s| s.at_ms == now_ms) {
            self.samples.pop_back();
        }
        self.samples.push_back(sample);
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.latest = Some(info);
    }

    /// Asks for INFO when due (called every frame, whatever the tab).
    pub fn poll(&mut self, model: &Model, now_ms: i64, cmds: &mut Vec<Command>) {
        if !self.watching || !model.connection.redis.is_up() {
            return;
        }
        if self
            .last_poll_ms
            .is_some_and(|t| now_ms - t < POLL_MS && now_ms >= t)
        {
            return;
        }
        self.last_poll_ms = Some(now_ms);
        cmds.push(Command::Tools(ToolsCommand::ServerInfo {
            sample: SAMPLE_KEYS,
        }));
    }

    /// A series per node and the total of one figure.
    fn series(
        &self,
        name: &str,
        unit: &'static str,
        dark: bool,
        f: impl Fn(&Figures, Option<&Figures>) -> Option<f64>,
    ) -> Vec<Series> {
        let mut out = Vec::new();
        let mut prev: Option<&Sample> = None;
        let mut total = Vec::with_capacity(self.samples.len());
        for s in &self.samples {
            total.push((s.at_ms, f(&s.total, prev.map(|p| &p.total))));
            prev = Some(s);
        }
        out.push(Series::from_points(
            format!("{name} (total)"),
            unit,
            theme::accent(dark),
            total,
        ));
        let addrs: Vec<String> = self
            .samples
            .back()
            .map(|s| s.nodes.iter().map(|(a, _)| a.clone()).collect())
            .unwrap_or_default();
        if addrs.len() > 1 {
            for (i, addr) in addrs.iter().enumerate() {
                let mut prev: Option<&Figures> = None;
                let mut pts = Vec::new();
                for s in &self.samples {
                    let cur = s.nodes.iter().find(|(a, _)| a == addr).map(|(_, f)| f);
                    pts.push((s.at_ms, cur.and_then(|c| f(c, prev))));
                    prev = cur;
                }
                out.push(Series::from_points(
                    addr.clone(),
                    unit,
                    NODE_COLORS[i % NODE_COLORS.len()],
                    pts,
                ));
            }
        }
        out
    }

    /// Draws the tab.
    /// Draws the tab; `below` draws more panels at the end of its scroll area.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        now_ms: i64,
        cmds: &mut Vec<Command>,
        below: impl FnOnce(&mut egui::Ui, &mut Vec<Command>),
    ) {
        self.watching = true;
        self.poll(model, now_ms, cmds);
        let dark = theme::is_dark(ui.ctx());
        let muted = theme::muted(dark);
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(theme::bad(dark)));
        }
        let Some(info) = self.latest.clone() else {
            ui.horizontal(|ui| {
                if model.connection.redis.is_up() {
                    ui.spinner();
                    ui.label("Reading INFO from every master…");
                } else {
                    ui.label(RichText::new("Redis is not connected.").color(muted));
                }
            });
            return;
        };
        let t = &info.total;
        let version = info
            .nodes
            .first()
            .and_then(|n| n.redis_version.clone())
            .unwrap_or_else(|| "?".into());
        let uptime = info
            .nodes
            .iter()
            .filter_map(|n| n.uptime_seconds)
            .min()
            .map(|s| format::duration_ms(s * 1000))
            .unwrap_or_else(|| "?".into());
        let topo = match info.topology {
            Topology::Standalone => "standalone".to_string(),
            Topology::Cluster => format!("cluster of {} masters", info.nodes.len()),
        };
        ui.label(
            RichText::new(format!(
                "Redis {version} • {topo} • up {uptime} • read every {} s; plots cover this session",
                POLL_MS / 1000
            ))
            .color(muted),
        );
        ui.add_space(4.0);
        egui::ScrollArea::vertical()
            .id_salt("redis-tab")
            .auto_shrink(false)
            .show(ui, |ui| {
                tiles_ui(ui, t);
                ui.add_space(8.0);
                self.plots_ui(ui, now_ms, dark);
                if info.nodes.len() > 1 {
                    ui.add_space(8.0);
                    ui.label(RichText::new("Per master").strong());
                    nodes_ui(ui, &info);
                }
                ui.add_space(8.0);
                let d = &info.key_distribution;
                ui.label(RichText::new("Keys by pattern").strong());
                ui.label(
                    RichText::new(format!(
                        "{} of {} keys sampled{}",
                        format::group(d.sample_size),
                        format::group(d.keyspace_size),
                        if d.complete {
                            " (all of them)"
                        } else {
                            "; counts are estimates"
                        }
                    ))
                    .small()
                    .color(muted),
                );
                let rows: Vec<(String, u64)> = d
                    .patterns
                    .iter()
                    .map(|p| (p.pattern.clone(), p.estimated_keys))
                    .collect();
                bar_list_ui(ui, &rows, theme::accent(dark));
                ui.add_space(8.0);
                below(ui, cmds);
            });
    }

    fn plots_ui(&self, ui: &mut egui::Ui, now_ms: i64, dark: bool) {
        let from = self.samples.front().map_or(now_ms - 60_000, |s| s.at_ms);
        let to = now_ms.max(from + 10_000);
        let cols = if ui.available_width() > 900.0 { 2 } else { 1 };
        let plots: [PlotSpec; 4] = [
            (
                "ops",
                "Operations per second",
                self.series("ops/s", "ops/s", dark, |f, _| Some(f.ops)),
                None,
            ),
            (
                "mem",
                "Memory used",
                self.series("memory", "MB", dark, |f, _| Some(f.memory_mb)),
                None,
            ),
            (
                "hits",
                "Hit rate between reads",
                self.series("hit rate", "%", dark, |f, p| {
                    let p = p?;
                    let hits = f.hits.checked_sub(p.hits)?;
                    let misses = f.misses.checked_sub(p.misses)?;
                    (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64 * 100.0)
                }),
                Some((0.0, 100.0)),
            ),
            (
                "clients",
                "Connected clients",
                self.series("clients", "", dark, |f, _| Some(f.clients)),
                None,
            ),
        ];
        for pair in plots.chunks(cols) {
            ui.columns(cols, |columns| {
                for (col, (id, title, series, range)) in columns.iter_mut().zip(pair) {
                    col.label(RichText::new(*title).strong());
                    time_series_ui(
                        col,
                        &format!("redis-plot-{id}"),
                        series,
                        (from, to),
                        now_ms,
                        *range,
                        150.0,
                    );
                }
            });
            ui.add_space(8.0);
        }
    }
}

/// The tiles of the latest totals.
fn tiles_ui(ui: &mut egui::Ui, t: &ServerStats) {
    // Seven tiles on one line when they fit at a readable width.
    let gap = ui.spacing().item_spacing.x;
    let width = ((ui.available_width() - 6.0 * gap) / 7.0 - 1.0).clamp(140.0, 200.0);
    ui.horizontal_wrapped(|ui| {
        tile_ui(
            ui,
            width,
            "Operations / s",
            RichText::new(format::group(t.ops_per_sec)),
            "right now",
        );
        let max = t
            .max_memory_mb
            .map(|m| format!("of {} max", format::mb(m)))
            .unwrap_or_else(|| "no maxmemory".into());
        tile_ui(
            ui,
            width,
            "Memory used",
            RichText::new(format::mb(t.used_memory_mb)),
            &max,
        );
        tile_ui(
            ui,
            width,
            "Hit rate",
            RichText::new(
                t.hit_rate
                    .map(format::percent)
                    .unwrap_or_else(|| "—".into()),
            ),
            "since the server started",
        );
        tile_ui(
            ui,
            width,
            "Clients",
            RichText::new(format::group(t.connected_clients)),
            "connected",
        );
        tile_ui(
            ui,
            width,
            "Keys",
            RichText::new(format::group(t.keys)),
            "every database",
        );
        tile_ui(
            ui,
            width,
            "Evicted / expired",
            RichText::new(format!(
                "{} / {}",
                format::group(t.evicted_keys),
                format::group(t.expired_keys)
            )),
            t.maxmemory_policy.as_deref().unwrap_or("policy unknown"),
        );
        tile_ui(
            ui,
            width,
            "Fragmentation",
            RichText::new(
                t.fragmentation_ratio
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "—".into()),
            ),
            "RSS / used",
        );
    });
}

/// One row per master.
fn nodes_ui(ui: &mut egui::Ui, info: &RedisInfo) {
    egui::Grid::new("redis-nodes")
        .striped(true)
        .num_columns(7)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            for h in [
                "Node", "Version", "Ops/s", "Memory", "Hit rate", "Clients", "Keys",
            ] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for n in &info.nodes {
                let s = &n.stats;
                ui.label(RichText::new(&n.addr).monospace());
                ui.label(n.redis_version.clone().unwrap_or_default());
                ui.label(format::group(s.ops_per_sec));
                ui.label(format::mb(s.used_memory_mb));
                ui.label(
                    s.hit_rate
                        .map(format::percent)
                        .unwrap_or_else(|| "—".into()),
                );
                ui.label(format::group(s.connected_clients));
                ui.label(format::group(s.keys));
                ui.end_row();
            }
        });
}
