"""The Gradio web UI: one module per tab, assembled by ui.app.build_ui(). Never imports torch."""
