//! A CEL evaluator with the Kubernetes library functions the policies and webhook
//! matchConditions use (`quantity()`, `compareTo()`, `sum()`, `lowerAscii()`, `indexOf()` of
//! lists and strings, `substring()`, `base64.decode()`), with Kubernetes' semantics, and
//! Kyverno's `resource.Get()` answered from the objects the test gives it.

use std::sync::Arc;

use cel::extractors::This;
use cel::{Context, Env, Value as CelValue};
use serde_json::Value;
use tollgate::quantity::parse_quantity;

/// Compiles and runs CEL expressions over JSON variables.
pub struct Cel {
    env: Arc<Env>,
}

impl Default for Cel {
    fn default() -> Self {
        let mut env = Env::stdlib();
        cel::extensions::encoders(&mut env).unwrap();
        Cel { env: Arc::new(env) }
    }
}

/// The key `resource.Get(apiVersion, resource, namespace, name)` looks an object up by, in the
/// `resource` variable's map.
pub fn resource_key(resource: &str, namespace: &str, name: &str) -> String {
    format!("{resource}/{namespace}/{name}")
}

impl Cel {
    /// Evaluates `expression` with JSON variables.
    pub fn eval(&self, expression: &str, variables: &[(&str, &Value)]) -> CelValue {
        let program = self
            .env
            .compile(expression)
            .unwrap_or_else(|e| panic!("{expression}: {e:?}"));
        let mut context = Context::with_env(self.env.clone());
        for (name, value) in variables {
            context.add_variable(*name, (*value).clone()).unwrap();
        }
        // Kubernetes' quantity library: quantities compare by value (here as milli-units).
        context
            .add_function("quantity", |text: Arc<String>| -> i64 {
                let value = parse_quantity(&text).unwrap_or_else(|e| panic!("{e}"));
                i64::try_from(
                    (value * rust_decimal::Decimal::from(1000))
                        .trunc()
                        .mantissa(),
                )
                .unwrap()
            })
            .unwrap();
        context
            .add_function("compareTo", |This(a): This<i64>, b: i64| -> i64 {
                a.cmp(&b) as i64
            })
            .unwrap();
        // Kubernetes' lists library: sum() of ints.
        context
            .add_function("sum", |This(list): This<Arc<Vec<CelValue>>>| -> i64 {
                list.iter()
                    .map(|v| {
                        if let CelValue::Int(i) = v {
                            *i
                        } else {
                            panic!("sum of {v:?}")
                        }
                    })
                    .sum()
            })
            .unwrap();
        // Kubernetes' lists library: indexOf() of a list; cel-go's strings: of a string.
        context
            .add_function(
                "indexOf",
                |This(target): This<CelValue>, needle: CelValue| -> i64 {
                    match (&target, &needle) {
                        (CelValue::List(list), _) => list
                            .iter()
                            .position(|v| *v == needle)
                            .map_or(-1, |i| i as i64),
                        (CelValue::String(text), CelValue::String(part)) => text
                            .find(part.as_str())
                            .map_or(-1, |i| text[..i].chars().count() as i64),
                        _ => panic!("indexOf on {target:?}"),
                    }
                },
            )
            .unwrap();
        context
            .add_function("substring", |This(text): This<Arc<String>>, start: i64| {
                text.chars().skip(start as usize).collect::<String>()
            })
            .unwrap();
        // Kyverno's resource library: resource.Get() from the `resource` variable's objects.
        context
            .add_function(
                "Get",
                |This(objects): This<CelValue>,
                 _api_version: Arc<String>,
                 resource: Arc<String>,
                 namespace: Arc<String>,
                 name: Arc<String>|
                 -> CelValue {
                    let CelValue::Map(objects) = objects else {
                        panic!("resource.Get needs the `resource` variable")
                    };
                    let key = resource_key(&resource, &namespace, &name);
                    objects
                        .get(&cel::objects::Key::String(Arc::new(key.clone())))
                        .cloned()
                        .unwrap_or_else(|| panic!("resource.Get: no {key}"))
                },
            )
            .unwrap();
        // Kubernetes' strings library: lowerAscii().
        context
            .add_function("lowerAscii", |This(text): This<Arc<String>>| -> String {
                text.to_ascii_lowercase()
            })
            .unwrap();
        program
            .execute(&context)
            .unwrap_or_else(|e| panic!("{expression}: {e:?}"))
    }

    pub fn truth(&self, expression: &str, variables: &[(&str, &Value)]) -> bool {
        match self.eval(expression, variables) {
            CelValue::Bool(b) => b,
            other => panic!("{expression} gave {other:?}, not a bool"),
        }
    }

    /// Whether every condition of a `matchConditions` list (`[{name, expression}]`) holds for
    /// `variables`, as an API server or Kyverno evaluates them.
    pub fn all_hold(&self, conditions: &Value, variables: &[(&str, &Value)]) -> bool {
        conditions
            .as_array()
            .into_iter()
            .flatten()
            .all(|c| self.truth(c["expression"].as_str().unwrap(), variables))
    }
}
