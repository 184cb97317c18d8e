//! CSS and JavaScript compiled into the binary, served with a content hash in the URL so
//! browsers may cache them for good.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const ASSETS: [Asset; 2] = [
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/app.js"),
    },
];

fn versions() -> &'static Vec<String> {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| hex::encode(&Sha256::digest(a.body)[..6]))
            .collect()
    })
}

/// The URL of an asset, changing whenever its content does.
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => format!("/static/{}?v={}", name, versions()[i]),
        None => format!("/static/{name}"),
    }
}

/// The asset called `name`, if there is one, with its version (the hash its URL carries).
pub fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    let i = ASSETS.iter().position(|a| a.name == name)?;
    Some((&ASSETS[i], versions()[i].as_str()))
}
