"""The remote portal: legally non-relevant software behind a protective interface (7.3 §4.3)."""
