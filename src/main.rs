use anyhow::Context;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use hailo_clip::config::{self, Settings};
use hailo_clip::engine::{ClassifyRequest, Engine};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hailo-clip",
    version,
    about = "CLIP zero-shot image classification service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        /// Config file (YAML or JSON); default: $XDG_CONFIG_HOME/hailo-clip/hailo-clip.json, then /etc/hailo/hailo-clip.yaml.
        #[arg(long, env = "HAILO_CLIP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Render YAML config to JSON with every default applied (atomic, byte-identical on re-run).
    RenderConfig {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Classify one image in-process and print the ranked labels.
    Classify {
        image: PathBuf,
        #[arg(long = "label", short = 'l', required = true)]
        labels: Vec<String>,
        #[arg(long = "negative")]
        negative_labels: Vec<String>,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        template: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "HAILO_CLIP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the embedding of an image or a text as JSON.
    Embed {
        #[arg(long, conflicts_with = "text", required_unless_present = "text")]
        image: Option<PathBuf>,
        #[arg(long)]
        text: Option<String>,
        #[arg(long, env = "HAILO_CLIP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check the device, driver, library, firmware and model files; one line per check.
    Doctor {
        #[arg(long, env = "HAILO_CLIP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage model files.
    Models {
        #[command(subcommand)]
        action: ModelsCommand,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download backend.hailo.downloads into the models directory (checked, atomic).
    Fetch {
        /// Download again even when the file is already there.
        #[arg(long)]
        force: bool,
        #[arg(long, env = "HAILO_CLIP_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn load_settings(path: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    let (s, from) = Settings::load(path)?;
    match from {
        Some(p) => tracing::info!(config = %p.display(), "config loaded"),
        None => tracing::info!("no config file found; using defaults"),
    }
    Ok(s)
}

/// The CLI runs the engine in-process, without waiting on warm-up: the first call loads the model.
fn cli_engine(config: Option<&std::path::Path>) -> anyhow::Result<std::sync::Arc<Engine>> {
    let mut s = load_settings(config)?;
    s.backend.warmup = false;
    Engine::start(s).map_err(|e| anyhow::anyhow!("{e}"))
}

/// HTTP and image decoding yield the CPU to the device thread (which keeps the unit's priority),
/// so a finished batch is answered and the next one started without waiting for a core.
/// Linux nice values are per thread and raising one needs no privilege.
fn lower_priority() {
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (current + 5).min(19));
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::RenderConfig { input, output } => {
            config::render(&input, &output)?;
            println!("wrote {}", output.display());
            Ok(())
        }
        Command::Serve { config } => {
            // Logging level comes from the config, so read it before anything logs.
            let (settings, from) = Settings::load(config.as_deref())?;
            hailo_clip::telemetry::init_logging(&settings.logging.level);
            match &from {
                Some(p) => tracing::info!(config = %p.display(), "config loaded"),
                None => tracing::info!("no config file found; using defaults"),
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .on_thread_start(lower_priority)
                .build()?;
            rt.block_on(async move {
                let listener = hailo_clip::server::bind(&settings).await?;
                hailo_clip::server::serve(settings, listener, hailo_clip::server::shutdown_signal())
                    .await
            })
        }
        Command::Classify {
            image,
            labels,
            negative_labels,
            top_k,
            template,
            json,
            config,
        } => {
            hailo_clip::telemetry::init_logging("warn");
            let bytes = std::fs::read(&image)
                .with_context(|| format!("cannot read {}", image.display()))?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let engine = cli_engine(config.as_deref())?;
                let out = engine
                    .classify(ClassifyRequest {
                        image: base64::engine::general_purpose::STANDARD.encode(bytes),
                        labels,
                        top_k,
                        prompt_template: template,
                        templates: None,
                        negative_labels,
                        threshold: None,
                    })
                    .await?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"result": out.value, "backend": engine.backend_name(), "inference_time_ms": out.inference_ms})
                    );
                } else {
                    for s in &out.value {
                        println!("{:>8.4}  {:>7.4}  {}", s.score, s.similarity, s.label);
                    }
                    eprintln!("backend {} | inference {:.1} ms", engine.backend_name(), out.inference_ms);
                }
                anyhow::Ok(())
            })
        }
        Command::Embed {
            image,
            text,
            config,
        } => {
            hailo_clip::telemetry::init_logging("warn");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let engine = cli_engine(config.as_deref())?;
                let out = match (image, text) {
                    (Some(p), _) => {
                        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
                        engine
                            .embed_images(vec![base64::engine::general_purpose::STANDARD.encode(bytes)])
                            .await?
                    }
                    (None, Some(t)) => engine.embed_texts(vec![t]).await?,
                    (None, None) => unreachable!("clap requires one"),
                };
                println!(
                    "{}",
                    serde_json::json!({"result": out.value[0], "backend": engine.backend_name(), "inference_time_ms": out.inference_ms})
                );
                anyhow::Ok(())
            })
        }
        Command::Doctor { config } => {
            hailo_clip::telemetry::init_logging("warn");
            let (settings, from) = Settings::load(config.as_deref())?;
            let report = hailo_clip::doctor::run(&settings, from.as_deref());
            print!("{report}");
            if report.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Models {
            action: ModelsCommand::Fetch { force, config },
        } => {
            hailo_clip::telemetry::init_logging("warn");
            let (settings, _) = Settings::load(config.as_deref())?;
            let opts = hailo_clip::models::FetchOptions {
                force,
                progress: true,
            };
            let outcomes =
                hailo_clip::models::fetch_all(&settings, &opts).map_err(anyhow::Error::msg)?;
            for outcome in outcomes {
                println!("{outcome}");
            }
            Ok(())
        }
    }
}
