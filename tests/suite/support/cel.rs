//! A CEL evaluator with the Kubernetes library functions the policies and webhook
//! matchConditions use (`quantity()`, `compareTo()`, `sum()`, `lowerAscii()`), with
//! Kubernetes' semantics.

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
        Cel {
            env: Arc::new(Env::stdlib()),
        }
    }
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
}
