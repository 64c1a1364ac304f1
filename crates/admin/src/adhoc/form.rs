//! The data forms (XEP-0004) of the service administration profile: the forms the server sends
//! (type `form`, then `result`), always with the hidden `FORM_TYPE` of XEP-0133 (XEP-0068), and
//! the reading of what the administrator submits.

use std::collections::HashMap;

use causerie_xml::Element;

use super::NS_ADMIN;

pub(super) const NS_DATA: &str = "jabber:x:data";

fn form_type() -> Element {
    Element::new("field", NS_DATA)
        .with_attr("type", "hidden")
        .with_attr("var", "FORM_TYPE")
        .with_child(Element::new("value", NS_DATA).with_text(NS_ADMIN))
}

/// A form to fill in (XEP-0004 §3.1, type `form`).
pub(super) fn form(title: &str, instructions: &str, fields: Vec<Element>) -> Element {
    let mut x = Element::new("x", NS_DATA)
        .with_attr("type", "form")
        .with_child(Element::new("title", NS_DATA).with_text(title))
        .with_child(Element::new("instructions", NS_DATA).with_text(instructions))
        .with_child(form_type());
    for f in fields {
        x.push_child(f);
    }
    x
}

/// What a command found (XEP-0004 §3.1, type `result`).
pub(super) fn result(fields: Vec<Element>) -> Element {
    let mut x = Element::new("x", NS_DATA)
        .with_attr("type", "result")
        .with_child(form_type());
    for f in fields {
        x.push_child(f);
    }
    x
}

/// A field of type `kind` (`jid-single`, `text-private`…) named `var`.
pub(super) fn field(var: &str, kind: &str, label: &str) -> Element {
    Element::new("field", NS_DATA)
        .with_attr("var", var)
        .with_attr("type", kind)
        .with_attr("label", label)
}

/// A field the administrator must fill in (XEP-0004 §3.2 `<required/>`).
pub(super) fn required(var: &str, kind: &str, label: &str) -> Element {
    field(var, kind, label).with_child(Element::new("required", NS_DATA))
}

/// A `list-single` field offering these values, each labelled as itself except `none`.
pub(super) fn choice(var: &str, label: &str, values: &[&str]) -> Element {
    let mut f = field(var, "list-single", label);
    for v in values {
        let shown = if *v == "none" { "None" } else { v };
        f.push_child(
            Element::new("option", NS_DATA)
                .with_attr("label", shown)
                .with_child(Element::new("value", NS_DATA).with_text(*v)),
        );
    }
    f
}

/// A field of a result, with its values.
pub(super) fn values<S: AsRef<str>>(
    var: &str,
    kind: &str,
    label: &str,
    values: impl IntoIterator<Item = S>,
) -> Element {
    let mut f = field(var, kind, label);
    for v in values {
        f.push_child(Element::new("value", NS_DATA).with_text(v.as_ref()));
    }
    f
}

/// What the administrator sent back.
#[derive(Debug)]
pub(super) enum Submission {
    /// A form of type `submit`: each field's values by name.
    Values(Values),
    /// A form of type `cancel` (XEP-0004 §3.1): the administrator gave up.
    Cancel,
}

/// The fields of a submitted form.
#[derive(Debug, Default)]
pub(super) struct Values(HashMap<String, Vec<String>>);

impl Values {
    /// The first value of `var`, as sent (passwords are not trimmed).
    pub(super) fn single(&self, var: &str) -> Option<&str> {
        self.0.get(var)?.first().map(String::as_str)
    }

    /// Every value of `var`.
    pub(super) fn multi(&self, var: &str) -> &[String] {
        self.0.get(var).map_or(&[], Vec::as_slice)
    }
}

/// The data form in a `<command/>`, if there is one. A form of another profile, or one that is
/// neither submitted nor cancelled, is refused with a message for the administrator.
pub(super) fn submission(command: &Element) -> Result<Option<Submission>, String> {
    let Some(x) = command.get_child("x", NS_DATA) else {
        return Ok(None);
    };
    match x.attr("type") {
        Some("cancel") => return Ok(Some(Submission::Cancel)),
        Some("submit") => {}
        other => {
            return Err(format!(
                "the form must be submitted (type 'submit'), not {}",
                other.map_or("without a type".to_owned(), |t| format!("of type '{t}'"))
            ));
        }
    }
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for f in x.children().filter(|f| f.is("field", NS_DATA)) {
        let Some(var) = f.attr("var") else {
            continue;
        };
        let found = f
            .children()
            .filter(|v| v.is("value", NS_DATA))
            .map(Element::text);
        values.entry(var.to_owned()).or_default().extend(found);
    }
    // XEP-0068: a form that names another FORM_TYPE was meant for something else.
    if let Some(kind) = values.get("FORM_TYPE").and_then(|v| v.first())
        && kind != NS_ADMIN
    {
        return Err(format!(
            "the form is of type {kind}, not {NS_ADMIN} (XEP-0133)"
        ));
    }
    Ok(Some(Submission::Values(Values(values))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(kind: Option<&str>, fields: &[(&str, &[&str])]) -> Element {
        let mut x = Element::new("x", NS_DATA);
        if let Some(k) = kind {
            x.set_attr("type", k);
        }
        for (var, vals) in fields {
            x.push_child(values(var, "text-single", var, vals.iter()));
        }
        Element::new("command", "http://jabber.org/protocol/commands").with_child(x)
    }

    #[test]
    fn submissions_are_read_by_field() {
        let cmd = submitted(
            Some("submit"),
            &[
                ("FORM_TYPE", &[NS_ADMIN]),
                ("accountjids", &["a@localhost", "b@localhost"]),
                ("password", &[" spaced "]),
            ],
        );
        let Ok(Some(Submission::Values(v))) = submission(&cmd) else {
            panic!("a submission");
        };
        assert_eq!(v.multi("accountjids"), ["a@localhost", "b@localhost"]);
        assert_eq!(v.single("password"), Some(" spaced "));
        assert_eq!(v.single("missing"), None);
        assert!(v.multi("missing").is_empty());
    }

    #[test]
    fn other_forms_are_refused_and_cancel_is_recognised() {
        let none = Element::new("command", "http://jabber.org/protocol/commands");
        assert!(matches!(submission(&none), Ok(None)));
        assert!(matches!(
            submission(&submitted(Some("cancel"), &[])),
            Ok(Some(Submission::Cancel))
        ));
        for kind in [Some("form"), Some("result"), None] {
            let e = submission(&submitted(kind, &[])).expect_err("not a submission");
            assert!(e.contains("must be submitted"), "{e}");
        }
        let e = submission(&submitted(
            Some("submit"),
            &[("FORM_TYPE", &["urn:example:other"])],
        ))
        .expect_err("another profile");
        assert!(e.contains("urn:example:other"), "{e}");
    }

    #[test]
    fn forms_carry_the_form_type_first() {
        let x = form("T", "I", vec![required("accountjid", "jid-single", "J")]);
        let fields: Vec<&Element> = x.children().filter(|c| c.name() == "field").collect();
        assert_eq!(fields[0].attr("var"), Some("FORM_TYPE"));
        assert_eq!(fields[0].attr("type"), Some("hidden"));
        assert_eq!(
            fields[0].get_child("value", NS_DATA).map(Element::text),
            Some(NS_ADMIN.to_owned())
        );
        assert!(fields[1].has_child("required", NS_DATA));
        let list = choice("max_items", "M", &["25", "none"]);
        let labels: Vec<&str> = list.children().filter_map(|o| o.attr("label")).collect();
        assert_eq!(labels, ["25", "None"]);
    }
}
