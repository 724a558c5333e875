//! Finds the newest `checked = "YYYY-MM-DD"` date in the built-in capability table, so that
//! `fourk --version` can name it (`fourk_api::caps::NEWEST_CHECK`) without parsing the table
//! at every start. A unit test in caps.rs checks it against the parsed table.

use std::fs;

fn main() {
    println!("cargo::rerun-if-changed=data/models.toml");
    let table = fs::read_to_string("data/models.toml").expect("data/models.toml is readable");
    let newest = table
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "checked").then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|d| d.len() == 10 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-')
        .max()
        .unwrap_or_else(|| "never".to_owned());
    println!("cargo::rustc-env=FOURK_NEWEST_CHECK={newest}");
}
