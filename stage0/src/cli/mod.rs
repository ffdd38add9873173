//! Command line: global flags, subcommand dispatch and rkt's exit-code and
//! error-output conventions (254 and a one-line `<subcommand>: ...` message on
//! our own errors, 2 for a missing subcommand).

mod api_service;
mod app;
mod apps;
mod cat_manifest;
mod completion;
mod config;
mod context;
mod enter;
mod export;
mod fetch;
mod gc;
mod image;
mod isolator_flags;
mod launch;
mod list;
mod logs;
mod metadata_service;
mod output;
mod pod_flags;
mod prepare;
mod prepare_pod;
pub mod profile;
mod rm;
mod run;
mod run_prepared;
mod status;
mod stop;
mod trust;
mod version;

use clap::{Parser, Subcommand};

pub use context::{Context, GlobalArgs};

/// Exit code of rkt's own failures.
pub const EXIT_FAILURE: i32 = 254;

#[derive(Parser, Debug)]
#[command(
    name = "rkt",
    about = "rkt, the application container runner",
    disable_version_flag = true,
    subcommand_required = false
)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident($module:ident::$args:ident) => $name:literal,)*) => {
        // Parsed once per process; boxing the big variants buys nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Subcommand, Debug)]
        // Each command's flags are built only when it runs: building all
        // of them took a third of `rkt`'s startup.
        #[command(defer = true)]
        enum Command {
            $($(#[$doc])* #[command(name = $name)] $variant($module::$args),)*
        }

        impl Command {
            /// The name rkt prefixes error lines with.
            fn name(&self) -> &'static str {
                match self { $(Command::$variant(_) => $name,)* }
            }

            fn run(self, ctx: &Context) -> anyhow::Result<i32> {
                match self { $(Command::$variant(args) => $module::run(ctx, args),)* }
            }
        }
    };
}

commands! {
    /// Run image(s) in a pod in rkt
    Run(run::RunArgs) => "run",
    /// Prepare to run image(s) in a pod in rkt
    Prepare(prepare::PrepareArgs) => "prepare",
    /// Run a prepared application pod in rkt
    RunPrepared(run_prepared::RunPreparedArgs) => "run-prepared",
    /// Fetch image(s) and store them in the local store
    Fetch(fetch::FetchArgs) => "fetch",
    /// Enter the namespaces of an app within a rkt pod
    Enter(enter::EnterArgs) => "enter",
    /// Stop a pod
    Stop(stop::StopArgs) => "stop",
    /// List pods
    List(list::ListArgs) => "list",
    /// Check the status of a rkt pod
    Status(status::StatusArgs) => "status",
    /// Show the output of a pod's apps (from the pod's journal)
    Logs(logs::LogsArgs) => "logs",
    /// Garbage collect rkt pods no longer in use
    Gc(gc::GcArgs) => "gc",
    /// Remove all files and resources associated with an exited pod
    Rm(rm::RmArgs) => "rm",
    /// Inspect and print the pod manifest
    CatManifest(cat_manifest::CatManifestArgs) => "cat-manifest",
    /// Export an app from an exited pod to an ACI file
    Export(export::ExportArgs) => "export",
    /// Operate on the apps of a mutable pod (experimental)
    App(app::AppArgs) => "app",
    /// Operate on image(s) in the local store
    Image(image::ImageArgs) => "image",
    /// Trust a key for image verification
    Trust(trust::TrustArgs) => "trust",
    /// Run the API service (read-only gRPC, v1alpha)
    ApiService(api_service::ApiServiceArgs) => "api-service",
    /// Run the metadata service (pod introspection and identity for apps)
    MetadataService(metadata_service::MetadataServiceArgs) => "metadata-service",
    /// Print configuration for each stage in JSON format
    Config(config::ConfigArgs) => "config",
    /// Output shell completion code for the specified shell
    Completion(completion::CompletionArgs) => "completion",
    /// Print the version and exit
    Version(version::VersionArgs) => "version",
}

/// Diagnostics go to stderr prefixed like rkt's (`run: ...`); `--debug`
/// shows them, otherwise only warnings.
fn init_tracing(command: &'static str, debug: bool) {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    struct Prefixed(&'static str);
    impl<S, N> FormatEvent<S, N> for Prefixed
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut w: Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> std::fmt::Result {
            write!(w, "{}: ", self.0)?;
            ctx.field_format().format_fields(w.by_ref(), event)?;
            writeln!(w)
        }
    }
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(Prefixed(command))
        .try_init();
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => EXIT_FAILURE,
            };
            let _ = e.print();
            return code;
        }
    };
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        eprintln!();
        eprintln!("rkt: missing subcommand");
        return 2;
    };
    let name = command.name();
    init_tracing(name, cli.global.debug);
    let result = profile::start(cli.global.cpuprofile.clone(), cli.global.memprofile.clone())
        .and_then(|()| Context::new(cli.global))
        .and_then(|ctx| command.run(&ctx));
    profile::finish();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{name}: {}", one_line(&e));
            EXIT_FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the
/// message already carries (library errors often embed their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command (nested ones too) keeps its own one-line description
    /// once its deferred flags are built: a doc comment on a flattened
    /// flags struct would otherwise replace it.
    #[test]
    fn commands_keep_their_about_after_deferred_flags_are_built() {
        fn check(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let texts = |c: &clap::Command| {
                    [c.get_about(), c.get_long_about()].map(|a| a.map(|a| a.to_string()))
                };
                let declared = texts(sub);
                let mut built = sub.clone();
                built.build();
                let shown = texts(&built);
                assert!(declared[0].is_some(), "{path} has no description");
                assert_eq!(shown, declared, "{path}");
                check(&built, &path);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        check(&Cli::command(), "rkt");
        cli.debug_assert();
    }
}
