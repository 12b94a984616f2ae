"""Records as a pandas DataFrame, for the result objects a notebook gets (pandas is optional)."""
from __future__ import annotations


def records_frame(records: list[dict], owner: str, attribute: str):
    """``records`` as a DataFrame; ImportError naming ``owner``.``attribute`` (the same records as
    plain dicts) when pandas is not installed."""
    try:
        import pandas
    except ImportError:
        raise ImportError(f"{owner}.to_dataframe needs pandas (pip install pandas); {owner}.{attribute} has the "
                          "same records as a list of dicts") from None
    return pandas.DataFrame.from_records(records)
