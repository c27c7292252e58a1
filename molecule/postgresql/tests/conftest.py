"""Shows the figures the tests record (connection budget, load run) in pytest's summary."""

REPORT_KEY = "shipshape_report"  # the key test_postgresql.py records under


def pytest_terminal_summary(terminalreporter):
    lines = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for key, value in getattr(report, "user_properties", [])
        if key == REPORT_KEY
    ]
    if lines:
        terminalreporter.section("shipshape figures")
        for line in lines:
            terminalreporter.write_line(line)
