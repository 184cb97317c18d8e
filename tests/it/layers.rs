//! The shape of `src/`: which module may lean on which, and how long a handler may get.
//!
//! Each file under `src/` is a module; every `crate::`, `super::` and `self::` path in it
//! (in `use` lines and inline) is an edge to the module that path lands in. Test modules
//! (`#[cfg(test)]`) are left out: they may reach anywhere. The checks:
//! - no cycle among modules;
//! - no edge from a lower layer to a higher one, in the order
//!   config/telemetry → db → domain/audit/mail → auth → error → web → routes → startup;
//! - no handler in `src/routes/` over 40 lines, so a handler stays "extract, ask the
//!   policy, run one domain function, render its view".

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

const MAX_HANDLER_LINES: usize = 40;

/// Module path of a source file: `src/web/mod.rs` → `web`, `src/auth/totp.rs` →
/// `auth::totp`, `src/lib.rs` → `` (the crate root).
fn module_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The layer a module sits in; a module may lean on its own layer (without a cycle) and
/// on lower ones.
fn layer(module: &str) -> u8 {
    match module.split("::").next().unwrap_or("") {
        "" => 9,
        "config" | "telemetry" => 0,
        "db" => 1,
        "domain" | "audit" | "mail" => 2,
        "auth" => 3,
        "error" => 4,
        "web" => 5,
        "routes" | "scim" => 6,
        "startup" | "seed_members" => 7,
        other => panic!("module {other} has no layer: add it to tests/it/layers.rs"),
    }
}

/// Every `.rs` file under `dir`; the audit catalogue test reads `src/` with it too.
pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

pub(crate) fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && matches!(&a.meta, syn::Meta::List(list) if list.tokens.to_string().contains("test"))
    })
}

/// Every crate-relative path a file names, as segment lists starting from the crate root.
struct Paths<'a> {
    module: &'a [String],
    found: Vec<Vec<String>>,
}

impl Paths<'_> {
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.module.to_vec(),
            "super" => {
                let mut base = self.module.to_vec();
                base.pop();
                base
            }
            _ => return None,
        };
        let mut rest = &segments[1..];
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.leaf(prefix, &n.ident.to_string()),
            syn::UseTree::Rename(r) => self.leaf(prefix, &r.ident.to_string()),
            syn::UseTree::Glob(_) => self.leaf(prefix, "*"),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }

    fn leaf(&mut self, prefix: &[String], name: &str) {
        let mut segments = prefix.to_vec();
        if name != "self" && name != "*" {
            segments.push(name.to_string());
        }
        if let Some(path) = self.absolute(&segments) {
            self.found.push(path);
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_fn(self, item);
        }
    }
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if !is_cfg_test(&item.attrs) {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }
    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(path) = self.absolute(&segments) {
            self.found.push(path);
        }
        syn::visit::visit_path(self, path);
    }
}

struct Crate {
    /// module → modules it leans on (its own file excluded).
    edges: BTreeMap<String, BTreeSet<String>>,
    /// `routes` handlers over the limit: "file::name (N lines)".
    long_handlers: Vec<String>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f, &src)).collect();
    let mut edges = BTreeMap::new();
    let mut long_handlers = Vec::new();
    for file in &files {
        let module = module_of(file, &src);
        let text = std::fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let own: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(String::from).collect()
        };
        let mut paths = Paths {
            module: &own,
            found: Vec::new(),
        };
        paths.visit_file(&ast);
        let targets: BTreeSet<String> = paths
            .found
            .iter()
            .filter_map(|p| {
                // The longest prefix of the path that is a module file.
                (1..=p.len())
                    .rev()
                    .map(|n| p[..n].join("::"))
                    .find(|m| modules.contains(m))
            })
            .filter(|m| *m != module && !m.is_empty())
            .collect();
        edges.insert(module.clone(), targets);
        if module.starts_with("routes") {
            long_handlers.extend(long_functions(&ast, &text, &module));
        }
    }
    // A parent's `mod child;` is not a dependency on the child, and the crate root only
    // declares the tree.
    edges.remove("");
    Crate {
        edges,
        long_handlers,
    }
}

fn long_functions(ast: &syn::File, text: &str, module: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for item in &ast.items {
        let syn::Item::Fn(f) = item else { continue };
        if f.sig.asyncness.is_none() || is_cfg_test(&f.attrs) {
            continue;
        }
        // Find the fn's line span by name: syn's spans need proc-macro2's span-locations,
        // which is not worth a feature flag here.
        let name = f.sig.ident.to_string();
        let start = lines
            .iter()
            .position(|l| {
                l.contains(&format!("async fn {name}("))
                    || l.ends_with(&format!("async fn {name}"))
                    || l.contains(&format!("async fn {name}<"))
            })
            .unwrap();
        let end = (start..lines.len()).find(|&i| lines[i] == "}").unwrap();
        let length = end - start + 1;
        if length > MAX_HANDLER_LINES {
            long.push(format!("{module}::{name} ({length} lines)"));
        }
    }
    long
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

fn upward_imports(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    edges
        .iter()
        .flat_map(|(from, tos)| {
            tos.iter()
                .filter(move |to| layer(to) > layer(from))
                .map(move |to| format!("{from} → {to}"))
        })
        .collect()
}

#[test]
fn no_module_imports_another_in_a_cycle() {
    let found = cycles(&read_crate().edges);
    assert!(found.is_empty(), "import cycles among modules: {found:#?}");
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let upward = upward_imports(&read_crate().edges);
    assert!(upward.is_empty(), "imports up the layers: {upward:#?}");
}

#[test]
fn no_handler_runs_past_forty_lines() {
    let long = read_crate().long_handlers;
    assert!(
        long.is_empty(),
        "handlers over {MAX_HANDLER_LINES} lines: {long:#?}"
    );
}

#[test]
fn the_checks_see_a_cycle_and_an_upward_import() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("web::layout", vec!["web::middleware"]),
        ("web::middleware", vec!["web", "error"]),
        ("web", vec!["web::layout"]),
        ("error", vec![]),
        ("db::users", vec!["domain::email"]),
        ("domain::email", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cycles(&edges),
        vec![vec!["web", "web::layout", "web::middleware"]]
    );
    assert_eq!(upward_imports(&edges), vec!["db::users → domain::email"]);
}
