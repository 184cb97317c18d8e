//! The accessibility gate itself: a page with a serious violation must fail it, with
//! JavaScript on and off, or a green journey would prove nothing.

use anyhow::{bail, ensure};

use super::{Js, journey};
use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_axe_gate_fails_a_page_with_an_unlabelled_field() {
    let app = spawn_app().await;
    journey("axe_gate_self_test", |j| async move {
        for js in [Js::On, Js::Off] {
            let chrome = j.browser_with(&app, js).await?;
            chrome
                .client
                .goto("data:text/html,<html lang=en><title>t</title><main><input></main></html>")
                .await?;
            match chrome.check_accessibility().await {
                Ok(()) => bail!("axe passed a page with an unlabelled input ({js:?})"),
                Err(e) => ensure!(format!("{e:#}").contains("label"), "{e:#}"),
            }
        }
        Ok(())
    })
    .await;
}
