//! Reads template.yaml: CloudFormation/SAM YAML with its short-form tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`, ...),
//! turned into JSON with every intrinsic in its long form (`{"Fn::Sub": ...}`), then resolved against the names
//! the local stack gives each resource.

use serde_json::{Map, Value};
use std::{collections::HashMap, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("template.yaml: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(msg.into())
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub doc: Value,
}

/// Converts YAML to JSON, turning `!Tag value` into `{"Fn::Tag": value}` (or `{"Ref": value}`).
fn to_json(v: serde_norway::Value) -> Result<Value, TemplateError> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| invalid(e.to_string()))?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(invalid(format!("unsupported mapping key {other:?}"))),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = match name {
                "Ref" | "Condition" => name.to_owned(),
                other => format!("Fn::{other}"),
            };
            let mut value = to_json(t.value)?;
            // `!GetAtt A.B` is the string form of `Fn::GetAtt: [A, B]`.
            if key == "Fn::GetAtt"
                && let Value::String(s) = &value
            {
                let (a, b) = s
                    .split_once('.')
                    .ok_or_else(|| invalid(format!("!GetAtt {s} lacks an attribute")))?;
                value = Value::Array(vec![Value::String(a.into()), Value::String(b.into())]);
            }
            Value::Object(Map::from_iter([(key, value)]))
        }
    })
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: serde_norway::Value = serde_norway::from_str(text)?;
        let doc = to_json(yaml)?;
        if !doc.get("Resources").is_some_and(Value::is_object) {
            return Err(invalid("no Resources"));
        }
        Ok(Self { doc })
    }

    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Every resource: (logical id, type, properties).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.doc["Resources"].as_object().into_iter().flatten().map(|(id, r)| {
            (
                id.as_str(),
                r.get("Type").and_then(Value::as_str).unwrap_or_default(),
                r.get("Properties").unwrap_or(&Value::Null),
            )
        })
    }

    pub fn resource(&self, id: &str) -> Option<&Value> {
        self.doc["Resources"].get(id)
    }

    pub fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .filter(move |(_, t, _)| *t == kind)
            .map(|(id, _, p)| (id, p))
    }

    /// Parameter defaults (as strings), for parameters that have one.
    pub fn parameter_defaults(&self) -> HashMap<String, Value> {
        self.doc["Parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, p)| Some((k.clone(), p.get("Default")?.clone())))
            .collect()
    }

    /// A parameter's `Type` (`String`, `Number`, `CommaDelimitedList`, ...).
    pub fn parameter_type(&self, name: &str) -> Option<&str> {
        self.doc["Parameters"][name]["Type"].as_str()
    }

    pub fn parameter_names(&self) -> Vec<String> {
        self.doc["Parameters"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `Globals.Function.<key>`.
    pub fn function_global(&self, key: &str) -> Option<&Value> {
        self.doc.get("Globals")?.get("Function")?.get(key)
    }

    /// A function property, falling back to `Globals.Function` (SAM's rule; Environment variables are merged).
    pub fn function_property(&self, id: &str, key: &str) -> Option<Value> {
        let own = self.resource(id)?.get("Properties").and_then(|p| p.get(key)).cloned();
        let global = self.function_global(key).cloned();
        match (own, global) {
            (Some(Value::Object(mut o)), Some(Value::Object(g))) if key == "Environment" => {
                // Merge Environment.Variables: the function's own win.
                let mut vars = g
                    .get("Variables")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(own_vars) = o.get("Variables").and_then(Value::as_object) {
                    vars.extend(own_vars.clone());
                }
                o.insert("Variables".into(), Value::Object(vars));
                Some(Value::Object(o))
            }
            (Some(v), _) => Some(v),
            (None, g) => g,
        }
    }
}

/// Values the resolver substitutes: pseudo parameters, parameters, and each resource's `Ref` and attributes.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub pseudo: HashMap<String, Value>,
    pub parameters: HashMap<String, Value>,
    pub refs: HashMap<String, Value>,
    pub attrs: HashMap<(String, String), Value>,
}

/// Evaluates intrinsic functions.
pub struct Resolver<'a> {
    pub template: &'a Template,
    pub names: &'a Names,
}

const NO_VALUE: &str = "AWS::NoValue";

impl Resolver<'_> {
    /// Resolves a value; `Ref: AWS::NoValue` inside objects and arrays removes the entry.
    pub fn resolve(&self, v: &Value) -> Result<Value, TemplateError> {
        Ok(self.eval(v)?.unwrap_or(Value::Null))
    }

    /// A resolved value as the string an environment variable would hold.
    pub fn resolve_string(&self, v: &Value) -> Result<String, TemplateError> {
        Ok(match self.resolve(v)? {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    fn eval(&self, v: &Value) -> Result<Option<Value>, TemplateError> {
        match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for i in items {
                    if let Some(x) = self.eval(i)? {
                        out.push(x);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().unwrap_or_else(|| unreachable!());
                match k.as_str() {
                    "Ref" => self.reference(arg),
                    "Condition" => Ok(Some(Value::Bool(self.condition(str_arg(arg, "Condition")?)?))),
                    k if k.starts_with("Fn::") => self.function(k, arg),
                    _ => self.object(m),
                }
            }
            Value::Object(m) => self.object(m),
            other => Ok(Some(other.clone())),
        }
    }

    fn object(&self, m: &Map<String, Value>) -> Result<Option<Value>, TemplateError> {
        let mut out = Map::new();
        for (k, v) in m {
            if let Some(x) = self.eval(v)? {
                out.insert(k.clone(), x);
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn reference(&self, arg: &Value) -> Result<Option<Value>, TemplateError> {
        let name = str_arg(arg, "Ref")?;
        if name == NO_VALUE {
            return Ok(None);
        }
        self.names
            .pseudo
            .get(name)
            .or_else(|| self.names.parameters.get(name))
            .or_else(|| self.names.refs.get(name))
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                invalid(format!(
                    "!Ref {name}: no such parameter or resource (or no value given)"
                ))
            })
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<Value, TemplateError> {
        self.names
            .attrs
            .get(&(resource.to_owned(), attribute.to_owned()))
            .cloned()
            .ok_or_else(|| invalid(format!("!GetAtt {resource}.{attribute} is not known locally")))
    }

    /// Whether the template's condition `name` holds.
    pub fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        let c = self
            .template
            .doc
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| invalid(format!("no condition {name}")))?;
        truthy(&self.resolve(c)?)
    }

    fn function(&self, k: &str, arg: &Value) -> Result<Option<Value>, TemplateError> {
        let list = |n: usize| -> Result<&Vec<Value>, TemplateError> {
            arg.as_array()
                .filter(|a| a.len() == n)
                .ok_or_else(|| invalid(format!("{k} takes a list of {n}")))
        };
        Ok(Some(match k {
            "Fn::GetAtt" => {
                let a = list(2)?;
                self.attribute(str_arg(&a[0], k)?, &self.resolve_string(&a[1])?)?
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.as_str(), Map::new()),
                    Value::Array(a) if a.len() == 2 => (
                        str_arg(&a[0], k)?,
                        self.resolve(&a[1])?
                            .as_object()
                            .cloned()
                            .ok_or_else(|| invalid("Fn::Sub variables must be a map"))?,
                    ),
                    _ => return Err(invalid("Fn::Sub takes a string or [string, map]")),
                };
                Value::String(self.substitute(text, &vars)?)
            }
            "Fn::Join" => {
                let a = list(2)?;
                let sep = str_arg(&a[0], k)?;
                let parts = self.resolve(&a[1])?;
                let parts = parts.as_array().ok_or_else(|| invalid("Fn::Join takes a list"))?;
                Value::String(parts.iter().map(plain).collect::<Vec<_>>().join(sep))
            }
            "Fn::Select" => {
                let a = list(2)?;
                let idx: usize = plain(&self.resolve(&a[0])?)
                    .parse()
                    .map_err(|_| invalid("Fn::Select index"))?;
                let items = self.resolve(&a[1])?;
                items
                    .as_array()
                    .and_then(|i| i.get(idx))
                    .cloned()
                    .ok_or_else(|| invalid("Fn::Select out of range"))?
            }
            "Fn::Split" => {
                let a = list(2)?;
                let sep = str_arg(&a[0], k)?;
                Value::Array(
                    plain(&self.resolve(&a[1])?)
                        .split(sep)
                        .map(|s| Value::String(s.into()))
                        .collect(),
                )
            }
            "Fn::If" => {
                let a = list(3)?;
                let branch = if self.condition(str_arg(&a[0], k)?)? {
                    &a[1]
                } else {
                    &a[2]
                };
                return self.eval(branch);
            }
            "Fn::Equals" => {
                let a = list(2)?;
                Value::Bool(plain(&self.resolve(&a[0])?) == plain(&self.resolve(&a[1])?))
            }
            "Fn::Not" => Value::Bool(!truthy(&self.resolve(&list(1)?[0])?)?),
            "Fn::And" | "Fn::Or" => {
                let items = arg.as_array().ok_or_else(|| invalid(format!("{k} takes a list")))?;
                let values = items
                    .iter()
                    .map(|i| truthy(&self.resolve(i)?))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Bool(if k == "Fn::And" {
                    values.iter().all(|b| *b)
                } else {
                    values.iter().any(|b| *b)
                })
            }
            "Fn::FindInMap" => {
                let a = list(3)?;
                let (m, k1, k2) = (
                    plain(&self.resolve(&a[0])?),
                    plain(&self.resolve(&a[1])?),
                    plain(&self.resolve(&a[2])?),
                );
                self.template.doc["Mappings"][&m][&k1][&k2].clone()
            }
            "Fn::Base64" => self.resolve(arg)?,
            other => return Err(invalid(format!("{other} is not supported by natter-local"))),
        }))
    }

    /// `${Name}`, `${Resource.Attribute}` and `${!Literal}` in a Fn::Sub string.
    fn substitute(&self, text: &str, vars: &Map<String, Value>) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid(format!("unclosed ${{ in {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(&plain(v));
            } else if let Some((res, attribute)) = name.split_once('.').filter(|_| !name.starts_with("AWS::")) {
                out.push_str(&plain(&self.attribute(res, attribute)?));
            } else {
                out.push_str(&plain(
                    &self.reference(&Value::String(name.into()))?.unwrap_or_default(),
                ));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn str_arg<'v>(v: &'v Value, what: &str) -> Result<&'v str, TemplateError> {
    v.as_str().ok_or_else(|| invalid(format!("{what} takes a name")))
}

/// A scalar as text (numbers and booleans as written).
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn truthy(v: &Value) -> Result<bool, TemplateError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(invalid(format!("{other} is not a condition value"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Big: {Type: Number, Default: 5}
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
  NotDev: !Not [!Condition IsDev]
Globals:
  Function:
    Timeout: 3
    Environment:
      Variables:
        A: !Ref Big
        B: global
Resources:
  Q:
    Type: AWS::SQS::Queue
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          B: own
          URL: !Ref Q
          ARN: !GetAtt Q.Arn
          SUB: !Sub "x-${Stage}-${Q.Arn}-${AWS::Region}-${!Literal}"
          SUB2: !Sub ["${a}/${Stage}", {a: !Ref Big}]
          IF: !If [IsDev, yes, no]
          IF2: !If [NotDev, yes, !Ref "AWS::NoValue"]
          JOIN: !Join [",", [a, !Ref Stage]]
          SEL: !Select [1, !Split ["|", "p|q|r"]]
"#;

    fn names() -> Names {
        let mut n = Names::default();
        n.pseudo.insert("AWS::Region".into(), "us-east-1".into());
        n.parameters = Template::parse(T).unwrap().parameter_defaults();
        n.refs.insert("Q".into(), "http://q".into());
        n.attrs.insert(("Q".into(), "Arn".into()), "arn:q".into());
        n
    }

    #[test]
    fn resolves_short_and_long_forms_with_globals() {
        let t = Template::parse(T).unwrap();
        let n = names();
        let r = Resolver {
            template: &t,
            names: &n,
        };
        let env = r.resolve(&t.function_property("F", "Environment").unwrap()).unwrap();
        let v = &env["Variables"];
        assert_eq!(v["A"], 5);
        assert_eq!(v["B"], "own", "the function's own variables win over Globals");
        assert_eq!(v["URL"], "http://q");
        assert_eq!(v["ARN"], "arn:q");
        assert_eq!(v["SUB"], "x-dev-arn:q-us-east-1-${Literal}");
        assert_eq!(v["SUB2"], "5/dev");
        assert_eq!(v["IF"], "yes");
        assert!(v.get("IF2").is_none(), "AWS::NoValue removes the entry");
        assert_eq!(v["JOIN"], "a,dev");
        assert_eq!(v["SEL"], "q");
        assert_eq!(t.function_property("F", "Timeout").unwrap(), 3);
    }

    #[test]
    fn unknown_references_are_errors_that_name_them() {
        let t = Template::parse("Resources:\n  X:\n    Type: T\n    Properties: {A: !Ref Nope}\n").unwrap();
        let n = Names::default();
        let err = Resolver {
            template: &t,
            names: &n,
        }
        .resolve(&t.doc["Resources"]["X"]["Properties"])
        .unwrap_err();
        assert!(err.to_string().contains("Nope"), "{err}");
    }

    #[test]
    fn the_project_template_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path).unwrap();
        assert!(t.resources_of_type("AWS::DynamoDB::Table").count() >= 11);
        assert!(t.resources_of_type("AWS::Serverless::Function").count() >= 7);
    }
}
