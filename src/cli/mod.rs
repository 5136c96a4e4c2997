//! The command line: one module per command group; each runs the layers below in-process.

mod catalog;
mod doctor;
mod local;
mod logging;
mod models;
mod serve;

use clap::{Parser, Subcommand};
use config::Settings;
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
    /// Print the model catalog, marking what is installed.
    List {
        /// Catalog file instead of the built-in one.
        #[arg(long, env = "HAILO_CLIP_CATALOG")]
        catalog: Option<PathBuf>,
        /// HailoRT version the HEFs are for (default: the loaded driver's, else the project's pin).
        #[arg(long)]
        hailort: Option<String>,
    },
    /// Download a catalog model (NAME), or without NAME the configured backend.hailo.downloads;
    /// checked, atomic, resumable.
    Fetch {
        /// A catalog model name (see `models list`).
        name: Option<String>,
        /// Which backend's files: hailo (HEFs) or onnx (Immich's ONNX export).
        #[arg(long, value_parser = ["hailo", "onnx"], default_value = "onnx")]
        backend: String,
        /// Catalog file instead of the built-in one.
        #[arg(long, env = "HAILO_CLIP_CATALOG")]
        catalog: Option<PathBuf>,
        /// HailoRT version the HEFs are for (default: the loaded driver's, else the project's pin).
        #[arg(long)]
        hailort: Option<String>,
        /// Install here instead of the models directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print each file's size and sha256, as catalog pins.
        #[arg(long)]
        print_sha256: bool,
        /// Download again even when the file is already there.
        #[arg(long)]
        force: bool,
        #[arg(long, env = "HAILO_CLIP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Write the text HEF's host tables (text_embeddings.npz: token embedding + text projection)
    /// from an ONNX text encoder of the same weights (e.g. Immich's textual/model.onnx).
    TextTables {
        /// The ONNX text encoder.
        #[arg(long)]
        onnx: PathBuf,
        /// The .npz to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The HailoRT version HEFs are chosen for: given, else the loaded driver's (it must equal the
/// library's), else the project's pin.
fn hailort_version(given: Option<String>) -> String {
    given
        .or_else(|| backend::hailo::preflight::Host::new("/").driver_version())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(catalog::pinned_hailort)
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::RenderConfig { input, output } => {
            config::render(&input, &output)?;
            println!("wrote {}", output.display());
            Ok(())
        }
        Command::Serve { config } => serve::run(config.as_deref()),
        Command::Classify {
            image,
            labels,
            negative_labels,
            top_k,
            template,
            json,
            config,
        } => local::classify(
            &image,
            local::Labels {
                labels,
                negative_labels,
                top_k,
                template,
            },
            json,
            config.as_deref(),
        ),
        Command::Embed {
            image,
            text,
            config,
        } => local::embed(image.as_deref(), text, config.as_deref()),
        Command::Doctor { config } => {
            logging::init("warn");
            let (settings, from) = Settings::load(config.as_deref())?;
            let report = doctor::run(&settings, from.as_deref());
            print!("{report}");
            if report.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Models {
            action: ModelsCommand::TextTables { onnx, out },
        } => {
            let (vocab, width, dim) =
                models::text_tables(&onnx, &out).map_err(anyhow::Error::msg)?;
            println!(
                "wrote {} (token embedding {vocab} x {width}, text projection {width} x {dim})",
                out.display()
            );
            Ok(())
        }
        Command::Models {
            action: ModelsCommand::List { catalog, hailort },
        } => {
            let c = catalog::Catalog::load(catalog.as_deref()).map_err(anyhow::Error::msg)?;
            print!(
                "{}",
                models::list(&c, &hailort_version(hailort)).map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
        Command::Models {
            action:
                ModelsCommand::Fetch {
                    name,
                    backend,
                    catalog,
                    hailort,
                    dir,
                    print_sha256,
                    force,
                    config,
                },
        } => {
            logging::init("warn");
            let opts = models::FetchOptions {
                force,
                progress: true,
            };
            let Some(name) = name else {
                let (settings, _) = Settings::load(config.as_deref())?;
                let outcomes = models::fetch_all(&settings, &opts).map_err(anyhow::Error::msg)?;
                for outcome in outcomes {
                    println!("{outcome}");
                }
                return Ok(());
            };
            let c = catalog::Catalog::load(catalog.as_deref()).map_err(anyhow::Error::msg)?;
            let kind = if backend == "hailo" {
                catalog::Kind::Hailo
            } else {
                catalog::Kind::Onnx
            };
            let f = models::ModelFetch {
                name,
                kind,
                hailort: hailort_version(hailort),
                dir,
                print_sha256,
            };
            print!(
                "{}",
                models::fetch_model(&c, &f, &opts).map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
    }
}
