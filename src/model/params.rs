//! Trainable parameters as a flat vector: select by path, freeze the rest, extract, load.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use regex::Regex;

/// Which parameters train, by module path (e.g. `blocks.0.attn.q.lora_a`).
#[derive(Clone, Debug)]
pub struct Trainable(Regex);

impl Trainable {
    /// Parameters whose path matches `pattern` (anchored at both ends).
    pub fn new(pattern: &str) -> Self {
        Self(Regex::new(&format!("^(?:{pattern})$")).expect("adapter patterns are built in code"))
    }

    /// Whether the parameter at `path` (e.g. `blocks.0.attn.q.lora_a`) trains.
    pub fn matches(&self, path: &str) -> bool {
        self.0.is_match(path)
    }

    /// Freezes every parameter outside the selection and unfreezes those in it.
    pub fn apply<M: Module>(&self, module: M) -> M {
        module.map(&mut Freezer {
            sel: self,
            path: Vec::new(),
        })
    }

    /// The selected parameters, concatenated in module order.
    pub fn extract<M: Module>(&self, module: &M) -> Vec<f32> {
        let mut v = Collector {
            sel: self,
            path: Vec::new(),
            values: Vec::new(),
            all: Vec::new(),
        };
        module.visit(&mut v);
        v.values
    }

    /// Writes `values` (as [`extract`](Self::extract) lays them out) into the selected
    /// parameters. The length must match.
    pub fn load<M: Module>(&self, module: M, values: &[f32]) -> M {
        let mut loader = Loader {
            sel: self,
            path: Vec::new(),
            values,
            offset: 0,
        };
        let module = module.map(&mut loader);
        assert_eq!(loader.offset, values.len(), "parameter vector length");
        module
    }

    /// Loads a group's adapters side by side: every selected tensor becomes the
    /// concatenation of `values[k]`'s along its [client axis](super::group::client_axis).
    pub fn load_group<M: Module>(&self, module: M, values: &[&[f32]]) -> M {
        let mut loader = GroupLoader {
            sel: self,
            path: Vec::new(),
            values,
            offset: 0,
        };
        let module = module.map(&mut loader);
        for v in values {
            assert_eq!(loader.offset, v.len(), "parameter vector length");
        }
        module
    }

    /// The `clients` adapters of a group loaded by [`load_group`](Self::load_group), each
    /// as [`extract`](Self::extract) lays it out.
    pub(crate) fn extract_group<M: Module>(&self, module: &M, clients: usize) -> Vec<Vec<f32>> {
        let mut v = GroupCollector {
            sel: self,
            path: Vec::new(),
            values: vec![Vec::new(); clients],
        };
        module.visit(&mut v);
        v.values
    }

    /// The selected parameters as one differentiable vector, in [`extract`](Self::extract)'s
    /// order (for penalties on the distance to a reference vector).
    pub fn flat_tensor<M: Module>(&self, module: &M) -> Tensor<1> {
        let mut v = Flattener {
            sel: self,
            path: Vec::new(),
            parts: Vec::new(),
        };
        module.visit(&mut v);
        Tensor::cat(v.parts, 0)
    }

    /// Number of selected values and of all values.
    pub fn count<M: Module>(&self, module: &M) -> (usize, usize) {
        let v = self.counter(module);
        (v.layout.iter().sum(), v.total)
    }

    /// The lengths of the selected tensors, in [`extract`](Self::extract)'s order: the
    /// layout of the flat vector (for per-tensor wire scales).
    pub fn layout<M: Module>(&self, module: &M) -> Vec<usize> {
        self.counter(module).layout
    }

    fn counter<M: Module>(&self, module: &M) -> Counter<'_> {
        let mut v = Counter {
            sel: self,
            path: Vec::new(),
            layout: Vec::new(),
            total: 0,
        };
        module.visit(&mut v);
        v
    }

    /// Every parameter of the module, selected or not, as `(path, values)`.
    pub fn all_params<M: Module>(module: &M) -> Vec<(String, Vec<f32>)> {
        let sel = Trainable::new("");
        let mut v = Collector {
            sel: &sel,
            path: Vec::new(),
            values: Vec::new(),
            all: Vec::new(),
        };
        module.visit(&mut v);
        v.all
    }
}

/// The `enter_module`/`exit_module` pair of a visitor or mapper that keeps `self.path`
/// as the path of the module being walked.
macro_rules! track_path {
    () => {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
    };
}
pub(super) use track_path;

fn joined(path: &[String], leaf: Option<&str>) -> String {
    let mut p = path.join(".");
    if let Some(leaf) = leaf {
        if !p.is_empty() {
            p.push('.');
        }
        p.push_str(leaf);
    }
    p
}

struct Freezer<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
}

impl ModuleMapper for Freezer<'_> {
    track_path!();
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let trainable = self.sel.matches(&joined(&self.path, None));
        param.set_require_grad(trainable)
    }
}

struct Collector<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
    values: Vec<f32>,
    all: Vec<(String, Vec<f32>)>,
}

fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .expect("float parameters are f32")
}

impl ModuleVisitor for Collector<'_> {
    track_path!();
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = joined(&self.path, None);
        if self.sel.matches(&path) {
            self.values.extend(to_vec(param.val()));
        }
        self.all.push((path, to_vec(param.val())));
    }
}

struct Flattener<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for Flattener<'_> {
    track_path!();
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.sel.matches(&joined(&self.path, None)) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.parts.push(t.reshape([n]));
        }
    }
}

struct Counter<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
    layout: Vec<usize>,
    total: usize,
}

impl ModuleVisitor for Counter<'_> {
    track_path!();
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.val().shape().num_elements();
        self.total += n;
        if self.sel.matches(&joined(&self.path, None)) {
            self.layout.push(n);
        }
    }
}

struct Loader<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
    values: &'a [f32],
    offset: usize,
}

impl ModuleMapper for Loader<'_> {
    track_path!();
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if !self.sel.matches(&joined(&self.path, None)) {
            return param;
        }
        let require_grad = param.is_require_grad();
        let values = self.values;
        let mut offset = self.offset;
        let param = param.map(|t| {
            let shape = t.shape();
            let n = shape.num_elements();
            let chunk = values[offset..offset + n].to_vec();
            offset += n;
            Tensor::from_data(TensorData::new(chunk, shape), &t.device())
        });
        self.offset = offset;
        param.set_require_grad(require_grad)
    }
}

struct GroupLoader<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
    values: &'a [&'a [f32]],
    offset: usize,
}

impl ModuleMapper for GroupLoader<'_> {
    track_path!();
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = joined(&self.path, None);
        if !self.sel.matches(&path) {
            return param;
        }
        let require_grad = param.is_require_grad();
        let (values, offset) = (self.values, self.offset);
        let mut n = 0;
        let param = param.map(|t| {
            let shape = t.shape();
            n = shape.num_elements();
            let parts = values
                .iter()
                .map(|v| {
                    let chunk = v[offset..offset + n].to_vec();
                    Tensor::from_data(TensorData::new(chunk, shape.clone()), &t.device())
                })
                .collect();
            Tensor::cat(parts, super::group::client_axis(&path))
        });
        self.offset += n;
        param.set_require_grad(require_grad)
    }
}

struct GroupCollector<'a> {
    sel: &'a Trainable,
    path: Vec<String>,
    values: Vec<Vec<f32>>,
}

impl ModuleVisitor for GroupCollector<'_> {
    track_path!();
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = joined(&self.path, None);
        if !self.sel.matches(&path) {
            return;
        }
        let parts = param
            .val()
            .chunk(self.values.len(), super::group::client_axis(&path));
        for (out, part) in self.values.iter_mut().zip(parts) {
            out.extend(to_vec(part));
        }
    }
}
