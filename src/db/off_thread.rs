//! Work that blocks (a database call, a password hash, a file write) run on tokio's
//! blocking pool, the one actix's `web::block` uses.
//!
//! Every caller's work goes through one `spawn_blocking` of a boxed job. Spawned
//! directly, each closure type instantiated tokio's task machinery anew: about 1,800
//! copies of its poll, harness and cell functions, 0.8 MB of the binary, for some
//! hundred call sites. The box and the channel cost two small allocations a call, next
//! to the hop to another thread that every call makes anyway.

use std::fmt;

/// The work gave no answer: it panicked (the panic is logged where it happened), or the
/// runtime is shutting down.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "work on the blocking pool gave no answer (it panicked, or the runtime is stopping)",
        )
    }
}

impl std::error::Error for Interrupted {}

/// Runs `work` on the blocking pool and answers its result. Dropping the future (a
/// client gone) leaves the work running to its end, as `spawn_blocking` does.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Interrupted> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    spawn(Box::new(move || {
        // Nobody may be waiting any more; the work is done all the same.
        let _ = answer.send(work());
    }));
    answered.await.map_err(|_| Interrupted)
}

/// The one instantiation of `spawn_blocking`. Detached: the answer comes through the
/// channel, and a panic drops its sender.
fn spawn(job: Box<dyn FnOnce() + Send>) {
    drop(tokio::task::spawn_blocking(job));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_answer_comes_back_from_another_thread() {
        let caller = std::thread::current().id();
        let (ran_on, answer) = run(|| (std::thread::current().id(), 6 * 7)).await.unwrap();
        assert_eq!(answer, 42);
        assert_ne!(ran_on, caller);
    }

    #[tokio::test]
    async fn work_that_panics_answers_interrupted() {
        let answer = run(|| -> u32 { panic!("on purpose") }).await;
        assert!(answer.is_err());
    }
}
