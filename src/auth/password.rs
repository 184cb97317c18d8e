use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))?
        .to_string())
}

/// Verifies against the stored hash, or against a dummy one for unknown accounts so that
/// the answer takes as long whether or not the email exists.
pub fn verify_blocking(password: &str, stored: Option<&str>) -> bool {
    let dummy = dummy_hash();
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    real && matches
}

fn dummy_hash() -> &'static String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking(&crate::domain::tokens::generate()).expect("dummy hash"))
}

/// Runs hashes on the blocking pool, a bounded number at a time: each one costs tens of
/// milliseconds of CPU and 19 MiB, so a burst of sign-ins must queue, not pile up.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        actix_web::web::block(move || hash_blocking(&password)).await?
    }

    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        Ok(actix_web::web::block(move || verify_blocking(&password, stored.as_deref())).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let hash = hash_blocking("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("correct horse battery", Some(&hash)));
        assert!(!verify_blocking("wrong horse battery", Some(&hash)));
    }

    #[test]
    fn unknown_accounts_never_verify() {
        assert!(!verify_blocking("anything", None));
        assert!(!verify_blocking("anything", Some("not a hash")));
    }
}
