//! The deployment files (compose.yaml with and without its `ha` profile,
//! compose.dev.yaml, deploy/kubernetes/) render and validate: `deploy/check.py`
//! runs Debian's docker-compose and the PyPI package kubernetes-validate on
//! them. CI installs both (`.ci/run`) and sets GATEHOUSE_REQUIRE_DEPLOY_TOOLS,
//! so there the check always runs; elsewhere it is skipped, with a line that
//! says how to install them, when they are missing.

use std::process::Command;

fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|out| out.status.success())
}

#[test]
fn compose_and_kubernetes_files_render_and_validate() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tools =
        available("docker-compose", &["version"]) && available("python3", &["-c", "import yaml, kubernetes_validate"]);
    if !tools {
        assert!(
            std::env::var_os("GATEHOUSE_REQUIRE_DEPLOY_TOOLS").is_none(),
            "docker-compose or kubernetes-validate is missing and GATEHOUSE_REQUIRE_DEPLOY_TOOLS is set"
        );
        eprintln!(
            "skipped: needs docker-compose (apt-get install docker-compose) and kubernetes-validate (pip install \
             kubernetes-validate)"
        );
        return;
    }
    let out = Command::new("python3").arg("deploy/check.py").current_dir(root).output().expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "deploy/check.py failed:\n{text}");
    assert!(text.contains("Kubernetes manifests valid"), "{text}");
}
