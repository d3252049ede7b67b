"""cuikuan (催款): repayment reminders and collections messaging for lenders."""

__version__ = "0.1.0"
