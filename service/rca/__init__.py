"""Root-cause analysis: alerts in, grounded structured hypotheses out."""
