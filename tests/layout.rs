//! The module graph: no two sibling modules import each other, directly or through
//! others, in either crate, except the engine's server and strategy (a strategy is the
//! server's callback). Read from the `use` lines and paths of the sources themselves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The sibling circles the layout allows: `(crate source folder, parent module, members)`.
const ALLOWED: &[(&str, &str, &[&str])] = &[("actors/src", "", &["server", "strategy"])];

/// A module path from the crate root, e.g. `["pool", "remote"]`.
type ModPath = Vec<String>;

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Semi,
    Comma,
    Star,
    LParen,
    RParen,
    Other,
}

/// The tokens of Rust source that matter to paths: comments, strings and characters
/// dropped.
fn tokens(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => i = skip_string(b, i + 1),
            b'\'' => {
                // A character literal ('x', '\n', '"', 'τ'), or a lifetime ('a).
                if b.get(i + 1).is_some_and(|&c| c >= 0x80 || c == b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                }
            }
            b'r' | b'b' if raw_string_start(b, i).is_some() => {
                let (hashes, open) = raw_string_start(b, i).unwrap_or_default();
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                i = open;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                if b.get(i) == Some(&b'"') && matches!(&src[start..i], "b" | "c") {
                    i = skip_string(b, i + 1);
                } else {
                    out.push(Token::Ident(src[start..i].to_owned()));
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                out.push(Token::PathSep);
                i += 2;
            }
            _ => {
                out.push(match c {
                    b'{' => Token::Open,
                    b'}' => Token::Close,
                    b';' => Token::Semi,
                    b',' => Token::Comma,
                    b'*' => Token::Star,
                    b'(' => Token::LParen,
                    b')' => Token::RParen,
                    _ if c.is_ascii_whitespace() => {
                        i += 1;
                        continue;
                    }
                    _ => Token::Other,
                });
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index just past the string whose contents start at `i`.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

/// `(hashes, contents start)` when a raw string (`r"`, `r#"`, `br"`) starts at `i`.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident(b[i - 1]) {
        return None;
    }
    let mut j = i;
    if b[j] == b'b' {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some((hashes, j + hashes + 1))
}

/// What one module says: the paths it names (as written, with the module they were
/// written in) and the names it declares or re-exports.
#[derive(Default)]
struct Module {
    /// `(module written in, path as written)`.
    paths: Vec<(ModPath, Vec<String>)>,
    /// Items declared here.
    items: BTreeSet<String>,
    /// `name -> (module written in, path as written)` of each `pub use`; `*` for a glob.
    reexports: Vec<(String, ModPath, Vec<String>)>,
}

/// The crate under `root` (its `src` folder): every module, from its files and inline
/// `mod name { .. }` blocks.
fn read_crate(root: &Path) -> BTreeMap<ModPath, Module> {
    let mut modules = BTreeMap::new();
    for file in rust_files(root) {
        let rel = file.strip_prefix(root).unwrap().with_extension("");
        let mut path: ModPath = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            path.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            path.pop();
        }
        let src = std::fs::read_to_string(&file).unwrap();
        read_module(&tokens(&src), path, &mut modules);
    }
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

const DECLARES: &[&str] = &[
    "struct",
    "enum",
    "fn",
    "type",
    "const",
    "static",
    "trait",
    "union",
    "macro_rules",
];

/// Records the paths and items of one file's tokens, opening inline modules as it goes.
fn read_module(t: &[Token], path: ModPath, modules: &mut BTreeMap<ModPath, Module>) {
    // The module each open brace belongs to: inline modules push their name.
    let mut stack: Vec<(ModPath, usize)> = vec![(path.clone(), 0)];
    let mut depth = 0;
    modules.entry(path).or_default();
    let mut i = 0;
    while i < t.len() {
        let here = stack.last().unwrap().0.clone();
        match &t[i] {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if stack.len() > 1 && stack.last().unwrap().1 == depth {
                    stack.pop();
                }
            }
            Token::Ident(k) if k == "mod" => {
                if let (Some(Token::Ident(name)), Some(next)) = (t.get(i + 1), t.get(i + 2)) {
                    let mut inner = here.clone();
                    inner.push(name.clone());
                    modules.entry(inner.clone()).or_default();
                    if *next == Token::Open {
                        stack.push((inner, depth));
                    }
                    i += 2;
                    continue;
                }
            }
            Token::Ident(k) if DECLARES.contains(&k.as_str()) => {
                if let Some(Token::Ident(name)) = t.get(i + 1) {
                    modules.get_mut(&here).unwrap().items.insert(name.clone());
                }
            }
            Token::Ident(k) if k == "use" => {
                let public = i > 0 && is_pub(t, i);
                let end = (i..t.len())
                    .find(|&j| t[j] == Token::Semi)
                    .unwrap_or(t.len());
                let module = modules.get_mut(&here).unwrap();
                for p in use_tree(&t[i + 1..end], Vec::new()) {
                    if public {
                        let name = p.last().cloned().unwrap_or_default();
                        let target = if name == "*" {
                            p[..p.len() - 1].to_vec()
                        } else {
                            p.clone()
                        };
                        module.reexports.push((name, here.clone(), target));
                    }
                    let p: Vec<String> = p.into_iter().filter(|s| s != "*").collect();
                    module.paths.push((here.clone(), p));
                }
                i = end;
                continue;
            }
            Token::Ident(first) => {
                let mut p = vec![first.clone()];
                let mut j = i + 1;
                while t.get(j) == Some(&Token::PathSep) {
                    match t.get(j + 1) {
                        Some(Token::Ident(s)) => p.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                if p.len() > 1 {
                    modules
                        .get_mut(&here)
                        .unwrap()
                        .paths
                        .push((here.clone(), p));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Whether the `use` at `i` is a re-export (`pub use`, `pub(crate) use`, ...).
fn is_pub(t: &[Token], i: usize) -> bool {
    match &t[i - 1] {
        Token::Ident(k) => k == "pub",
        // `pub(crate) use`, `pub(super) use`, `pub(in path) use`.
        Token::RParen => t[..i - 1]
            .iter()
            .rposition(|tok| *tok == Token::LParen)
            .is_some_and(|open| open > 0 && t[open - 1] == Token::Ident("pub".into())),
        _ => false,
    }
}

/// Every path a `use` tree names, `as` renames dropped.
fn use_tree(t: &[Token], prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current = prefix.clone();
    let mut i = 0;
    while i < t.len() {
        match &t[i] {
            Token::Ident(k) if k == "as" => i += 1,
            Token::Ident(s) => current.push(s.clone()),
            Token::Star => current.push("*".into()),
            Token::Open => {
                let close = matching(t, i);
                for part in split_top(&t[i + 1..close]) {
                    out.extend(use_tree(part, current.clone()));
                }
                current = prefix.clone();
                i = close;
            }
            Token::Comma if current.len() > prefix.len() => {
                out.push(std::mem::replace(&mut current, prefix.clone()));
            }
            _ => {}
        }
        i += 1;
    }
    if current.len() > prefix.len() {
        out.push(current);
    }
    out
}

fn matching(t: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (j, tok) in t.iter().enumerate().skip(open) {
        match tok {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    t.len()
}

fn split_top(t: &[Token]) -> Vec<&[Token]> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (j, tok) in t.iter().enumerate() {
        match tok {
            Token::Open => depth += 1,
            Token::Close => depth -= 1,
            Token::Comma if depth == 0 => {
                parts.push(&t[start..j]);
                start = j + 1;
            }
            _ => {}
        }
    }
    parts.push(&t[start..]);
    parts
}

/// The crate's module graph, paths resolved to the module that defines what they name.
struct Graph {
    modules: BTreeMap<ModPath, Module>,
}

impl Graph {
    /// `path`, written in `module`, from the crate root; `None` for a path outside the
    /// crate (std, dependencies, local items).
    fn absolute(&self, module: &[String], path: &[String]) -> Option<ModPath> {
        let first = path.first()?;
        let mut base: ModPath = module.to_vec();
        let mut rest = path;
        match first.as_str() {
            "crate" => {
                base.clear();
                rest = &path[1..];
            }
            "super" | "self" => {
                while let Some(s) = rest.first().filter(|s| *s == "super" || *s == "self") {
                    if s == "super" {
                        base.pop();
                    }
                    rest = &rest[1..];
                }
            }
            _ => {
                let mut child = base.clone();
                child.push(first.clone());
                if !self.modules.contains_key(&child) {
                    return None;
                }
            }
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// Follows re-exports: the path of the module that defines what `path` names (or the
    /// module `path` is).
    fn resolve(&self, path: ModPath, hops: usize) -> ModPath {
        if hops > 32 {
            return path;
        }
        // The longest prefix that is a module; the next segment is an item in it.
        let Some(k) = (0..=path.len())
            .rev()
            .find(|&k| self.modules.contains_key(&path[..k]))
        else {
            return path;
        };
        if k == path.len() {
            return path;
        }
        let (module, name) = (&path[..k], &path[k]);
        let m = &self.modules[module];
        if m.items.contains(name) {
            return module.to_vec();
        }
        let target = m
            .reexports
            .iter()
            .filter(|(n, _, _)| n == name)
            .find_map(|(_, at, p)| self.absolute(at, p))
            .or_else(|| {
                m.reexports
                    .iter()
                    .filter(|(n, _, _)| n == "*")
                    .filter_map(|(_, at, p)| self.absolute(at, p))
                    .find(|glob| {
                        self.modules
                            .get(glob)
                            .is_some_and(|g| g.items.contains(name))
                    })
                    .map(|mut glob| {
                        glob.push(name.clone());
                        glob
                    })
            });
        match target {
            Some(mut t) if t != path[..=k] => {
                t.extend(path[k + 1..].iter().cloned());
                self.resolve(t, hops + 1)
            }
            _ => module.to_vec(),
        }
    }

    /// Edges between the children of `parent`: `a -> b` when a module under `a` names
    /// something defined under `b`.
    fn siblings(&self, parent: &[String]) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let child = |p: &[String]| -> Option<String> {
            (p.len() > parent.len() && p[..parent.len()] == *parent)
                .then(|| p[parent.len()].clone())
        };
        for (path, module) in &self.modules {
            let Some(from) = child(path) else { continue };
            for (at, written) in &module.paths {
                let Some(abs) = self.absolute(at, written) else {
                    continue;
                };
                let target = self.resolve(abs, 0);
                if let Some(to) = child(&target)
                    && to != from
                    && self
                        .modules
                        .contains_key(&[parent, std::slice::from_ref(&to)].concat())
                {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        edges
    }
}

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                s.low.insert(v, s.low[v].min(lw));
            } else if s.on.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                s.low.insert(v, s.low[v].min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(a, bs)| std::iter::once(a.as_str()).chain(bs.iter().map(String::as_str)))
        .collect();
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// Every circle among siblings of the crate under `src`, as `parent: {members}`.
fn crate_circles(src: &str) -> Vec<(String, BTreeSet<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let graph = Graph {
        modules: read_crate(&root),
    };
    let parents: BTreeSet<ModPath> = graph
        .modules
        .keys()
        .flat_map(|p| (0..p.len()).map(|k| p[..k].to_vec()))
        .collect();
    let mut found = Vec::new();
    for parent in parents {
        for circle in circles(&graph.siblings(&parent)) {
            found.push((parent.join("::"), circle));
        }
    }
    found
}

#[test]
fn no_sibling_modules_import_each_other_but_the_servers_strategy() {
    let mut unexpected = Vec::new();
    for src in ["src", "actors/src"] {
        for (parent, members) in crate_circles(src) {
            let allowed = ALLOWED.iter().any(|(s, p, m)| {
                *s == src && *p == parent && members == m.iter().map(|x| x.to_string()).collect()
            });
            if !allowed {
                unexpected.push(format!("{src}/{parent}: {members:?}"));
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "sibling modules that import each other (crate/parent: members): {unexpected:#?}"
    );
}

#[test]
fn the_reader_finds_the_circles_it_is_shown() {
    let edges = |list: &[(&str, &str)]| {
        let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in list {
            e.entry(a.to_string()).or_default().insert(b.to_string());
        }
        e
    };
    let set = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        circles(&edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        vec![set(&["a", "b", "c"])]
    );
    assert!(circles(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());

    // Paths in `use` trees, in code, through `super`, re-exports and globs, and inline
    // modules; strings and comments are not code.
    let mut modules = BTreeMap::new();
    let files: &[(&[&str], &str)] = &[
        (&[], "mod a; mod b; mod c; pub use c::Thing;"),
        (
            &["a"],
            "use crate::{b::{self, Bee as B}, Thing};\n// crate::d::x\nconst S: &str = \"crate::d\";",
        ),
        (&["b"], "pub struct Bee; fn f() { super::a::go(); }"),
        (
            &["c"],
            "pub struct Thing; pub use inner::*; mod inner { pub fn deep() {} }",
        ),
        (&["d"], "mod tests { use super::super::c::deep; }"),
    ];
    for (path, src) in files {
        read_module(
            &tokens(src),
            path.iter().map(|s| s.to_string()).collect(),
            &mut modules,
        );
    }
    let graph = Graph { modules };
    assert_eq!(
        graph.siblings(&[]),
        edges(&[("a", "b"), ("a", "c"), ("b", "a"), ("d", "c")])
    );
    assert_eq!(
        graph.resolve(vec!["c".into(), "deep".into()], 0),
        vec!["c".to_string(), "inner".to_string()]
    );
}
