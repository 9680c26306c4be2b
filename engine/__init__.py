"""Tuneloom engine: models, data, methods, training. Import-light at package level."""
import logging


class _NoHubKernelNotice(logging.Filter):
    """bitsandbytes 0.50, on CPUs with AVX512-BF16, tries to download a 4-bit matmul kernel from the Hub
    (`kernels-community`) at import and warns when it cannot, on every command. Tuneloom never fetches code
    from the Hub at run time; bitsandbytes then uses its own CPU kernel, so the notice says nothing a user
    can act on. Only that one message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels-community" not in str(record.msg)


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoHubKernelNotice())
