//! SQLite on a full disk: a small tmpfs holds the database; once it is full, reading
//! pages and new visitors' sign-in page still work, a change answers a 503 page saying
//! the database cannot store it, nothing is half-written, and everything works again as
//! soon as space returns.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::*;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?.keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed ({status}); needs root"));
        }
        Ok(SmallDisk { path: dir })
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

fn db_path(disk: &Path) -> String {
    disk.join("portcullis.db").to_string_lossy().into_owned()
}

#[actix_web::test]
async fn a_full_disk_answers_503_for_changes_and_recovers_when_space_returns() {
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        println!("skipped: SQLite only (the database file on a small disk)");
        return;
    }
    let disk = match SmallDisk::mount("4m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: no small disk to fill: {why}");
            return;
        }
    };
    let (url, data_dir) = (db_path(&disk.path), disk.path.join("data"));
    let app = spawn_app_with(move |s| {
        s.database_url = Some(url);
        s.data_dir = data_dir;
    })
    .await;
    let admin = app.setup_admin().await;
    let groups = "/orgs/my-org/groups";
    let before = admin.submit(groups, groups, &[("name", "Before")]).await;
    assert_eq!(before.status, 303, "{}", before.body);

    let filler = disk.fill();
    let full = admin.submit(groups, groups, &[("name", "Refused")]).await;
    assert_eq!(full.status, 503, "{}", full.body);
    assert!(full.headers.contains_key("x-request-id"));
    assert!(
        full.body.to_lowercase().contains("database"),
        "{}",
        full.body
    );
    // Reading still works, and so does the sign-in page for someone new.
    assert_eq!(admin.get("/orgs/my-org/users").await.status, 200);
    assert_eq!(app.client().get("/login").await.status, 200);

    std::fs::remove_file(filler).unwrap();
    let after = admin.submit(groups, groups, &[("name", "After")]).await;
    assert_eq!(after.status, 303, "{}", after.body);
    let list = admin.get(groups).await;
    assert!(list.body.contains("Before") && list.body.contains("After"));
    assert!(!list.body.contains("Refused"), "nothing half-written");
}
