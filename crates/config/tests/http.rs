//! `[http]`, the public listener of `/metrics` and `/health`: on loopback unless the file says
//! otherwise; another address is accepted with a warning; addresses are checked like the other
//! listeners' (form, and no address bound twice).

use causerie_config::Config;

const ORIGIN: &str = "causerie.toml";

#[track_caller]
fn accepted(text: &str) -> Config {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(config) => config,
        Err(e) => panic!("refused:\n{text}\n{e}"),
    }
}

#[track_caller]
fn refused(text: &str) -> Vec<String> {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(config) => panic!("accepted:\n{text}\nas {config:?}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

fn http_warnings(config: &Config) -> Vec<String> {
    config
        .warnings()
        .into_iter()
        .filter(|w| w.starts_with("http.listen"))
        .collect()
}

#[test]
fn the_default_listener_is_on_loopback_and_not_warned_about() {
    let config = accepted("");
    assert_eq!(config.http.listen, vec!["127.0.0.1:5280".to_owned()]);
    for text in &config.http.listen {
        let address: std::net::SocketAddr = text.parse().expect("an address");
        assert!(address.ip().is_loopback(), "{address}");
    }
    assert!(http_warnings(&config).is_empty());
    let ipv6 = accepted("[http]\nlisten = [\"[::1]:5280\"]\n");
    assert!(http_warnings(&ipv6).is_empty());
}

#[test]
fn another_address_is_accepted_with_a_warning() {
    let config = accepted("[http]\nlisten = [\"127.0.0.1:5280\", \"10.0.0.5:9100\"]\n");
    let warnings = http_warnings(&config);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("10.0.0.5:9100") && warnings[0].contains("without authentication"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        http_warnings(&accepted("[http]\nlisten = [\"[::]:5280\"]\n")).len(),
        1
    );
}

#[test]
fn an_empty_list_turns_the_listener_off() {
    let config = accepted("[http]\nlisten = []\n");
    assert!(config.http.listen.is_empty());
    assert!(http_warnings(&config).is_empty());
}

#[test]
fn addresses_must_be_ip_and_port() {
    let found = refused("[http]\nlisten = [\"localhost:5280\"]\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "causerie.toml:2: http.listen[0]: `localhost:5280` is not a socket address"
        ),
        "{}",
        found[0]
    );
}

#[test]
fn an_address_is_bound_once_over_every_listener() {
    let found = refused(
        "[c2s]\nstarttls_listen = [\"127.0.0.1:5222\"]\n\n[http]\nlisten = [\"127.0.0.1:5222\"]\n",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("http.listen[0]")
            && found[0].contains("already used by c2s.starttls_listen[0]"),
        "{}",
        found[0]
    );
    // Port 0 is a new port at each bind (the tests' setting).
    accepted("[c2s]\nstarttls_listen = [\"127.0.0.1:0\"]\n\n[http]\nlisten = [\"127.0.0.1:0\"]\n");
}

#[test]
fn max_connections_has_bounds() {
    assert_eq!(accepted("").http.max_connections, 64);
    let found = refused("[http]\nmax_connections = 0\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("http.max_connections"), "{}", found[0]);
    assert_eq!(
        accepted("[http]\nmax_connections = 4096\n")
            .http
            .max_connections,
        4096
    );
}
