"""labconsole: a terminal lab console for the bump-DDPM experiments of Liang, Liu & Fiete (2024).

Modules that hold no UI (cli, config, presets, events, rundir, runner, worker, batch) never import
Textual, so ``labconsole --batch`` runs where Textual is absent.
"""
__version__ = "0.1.0"
