"""The standard activity types of activities.md: present in every deployment, no file needed.

Their attributes get camelCase apiNames as well as the display names the spec gives, so a
constraint may name either, as for custom types.
"""

from __future__ import annotations

from typing import Final

from streams.engine.datatypes import DataType
from streams.engine.definitions import ActivityTypeDef, AttributeDef

VISIT_WEBPAGE: Final = 1
FILL_OUT_FORM: Final = 2
CLICK_LINK: Final = 3
NEW_LEAD: Final = 12
CHANGE_DATA_VALUE: Final = 13
FIELD_TYPES: Final = frozenset({NEW_LEAD, CHANGE_DATA_VALUE})
"""The activity types that change a lead's fields."""
DELETE_LEAD: Final = 37
MOBILE_APP_ACTION: Final = 400

MOBILE_ACTION_NAME_MAX: Final = 19
"""A mobile action's name (type 400's primary attribute) is at most this long."""

STR, INT, FLT, TXT = DataType.STRING, DataType.INTEGER, DataType.FLOAT, DataType.TEXT


def _attr(api_name: str, name: str, data_type: DataType = STR) -> AttributeDef:
    return AttributeDef(apiName=api_name, name=name, dataType=data_type)


def _type(
    type_id: int,
    api_name: str,
    name: str,
    trigger: str,
    filter_: str,
    primary: AttributeDef,
    *attributes: AttributeDef,
) -> ActivityTypeDef:
    return ActivityTypeDef(
        id=type_id,
        apiName=api_name,
        name=name,
        triggerName=trigger,
        filterName=filter_,
        status="approved",
        primaryAttribute=primary,
        attributes=list(attributes),
    )


STANDARD_TYPES: Final[tuple[ActivityTypeDef, ...]] = (
    _type(
        VISIT_WEBPAGE,
        "visitWebpage",
        "Visit Webpage",
        "Visits Web Page",
        "Visited Web Page",
        _attr("webpage", "Webpage"),
        _attr("webpageUrl", "Webpage URL"),
        _attr("queryParameters", "Query Parameters"),
        _attr("referrerUrl", "Referrer URL"),
        _attr("clientIpAddress", "Client IP Address"),
        _attr("userAgent", "User Agent"),
    ),
    _type(
        FILL_OUT_FORM,
        "fillOutForm",
        "Fill Out Form",
        "Fills Out Form",
        "Filled Out Form",
        _attr("webform", "Webform"),
        _attr("webpageId", "Webpage ID", INT),
        _attr("queryParameters", "Query Parameters"),
        _attr("referrerUrl", "Referrer URL"),
        _attr("clientIpAddress", "Client IP Address"),
        _attr("userAgent", "User Agent"),
        _attr("formFields", "Form Fields", TXT),
    ),
    _type(
        CLICK_LINK,
        "clickLink",
        "Click Link",
        "Clicks Link on Web Page",
        "Clicked Link on Web Page",
        _attr("link", "Link"),
        _attr("webpageUrl", "Webpage URL"),
        _attr("referrerUrl", "Referrer URL"),
    ),
    _type(
        NEW_LEAD,
        "newLead",
        "New Lead",
        "Person is Created",
        "Person was Created",
        _attr("source", "Source"),
        _attr("sourceType", "Source Type"),
        _attr("formName", "Form Name"),
        _attr("listName", "List Name"),
    ),
    _type(
        CHANGE_DATA_VALUE,
        "changeDataValue",
        "Change Data Value",
        "Data Value Changes",
        "Data Value Was Changed",
        _attr("attributeName", "Attribute Name"),
        _attr("reason", "Reason"),
        _attr("source", "Source"),
    ),
    _type(
        MOBILE_APP_ACTION,
        "mobileAppAction",
        "Mobile App Action",
        "Performs Mobile App Action",
        "Performed Mobile App Action",
        _attr("action", "Action"),
        _attr("actionType", "Action Type"),
        _attr("actionDetails", "Action Details"),
        _attr("actionLength", "Action Length", FLT),
        _attr("actionMetric", "Action Metric", FLT),
        _attr("platform", "Platform"),
        _attr("deviceType", "Device Type"),
    ),
)

DELETE_LEAD_TYPE: Final = ActivityTypeDef(
    id=DELETE_LEAD,
    apiName="deleteLead",
    name="Delete Lead",
    triggerName="",
    filterName="",
    status="approved",
    primaryAttribute=_attr("leadName", "Lead Name"),
)
"""Delete Lead has no trigger and no filter (its names are empty)."""
