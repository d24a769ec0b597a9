//! The integration tools a Based program can call (the catalogue of the original backend's
//! TOOLS_DOCUMENTATION). Parameter names are ours: the original lists names and functions only.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tool {
    pub name: &'static str,
    pub function: &'static str,
    pub params: &'static [&'static str],
}

pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "Gmail - Send Email",
        function: "gmail.send_email",
        params: &["receiver", "subject", "body"],
    },
    Tool {
        name: "Gmail - Find Email",
        function: "gmail.gmail_search_mail",
        params: &["query"],
    },
    Tool {
        name: "Google Sheets - Insert Row",
        function: "google_sheets.insert_row",
        params: &["spreadsheet_id", "sheet_name", "row"],
    },
    Tool {
        name: "Google Sheets - Delete Row",
        function: "google_sheets.delete_row",
        params: &["spreadsheet_id", "sheet_name", "row_index"],
    },
    Tool {
        name: "Google Sheets - Update Row",
        function: "google_sheets.update_row",
        params: &["spreadsheet_id", "sheet_name", "row_index", "row"],
    },
    Tool {
        name: "Google Sheets - Find Rows",
        function: "google_sheets.find_rows",
        params: &["spreadsheet_id", "sheet_name", "column", "value"],
    },
    Tool {
        name: "Google Sheets - Clear Sheet",
        function: "google_sheets.clear_sheet",
        params: &["spreadsheet_id", "sheet_name"],
    },
    Tool {
        name: "Google Calendar - Update Event",
        function: "google_calendar.update_event",
        params: &["event_id", "summary", "start", "end"],
    },
    Tool {
        name: "Google Contacts - Add Contact",
        function: "google_contacts.add_contact",
        params: &["name", "email", "phone"],
    },
    Tool {
        name: "Slack - Send Message To A User",
        function: "slack.send_direct_message",
        params: &["user", "message"],
    },
    Tool {
        name: "Slack - Send Message To A Channel",
        function: "slack.send_channel_message",
        params: &["channel", "message"],
    },
    Tool {
        name: "Slack - Request Approval From A User",
        function: "slack.request_approval_direct_message",
        params: &["user", "message"],
    },
    Tool {
        name: "Slack - Request Approval in a Channel",
        function: "slack.request_approval_message",
        params: &["channel", "message"],
    },
    Tool {
        name: "Salesforce - Run Query",
        function: "salesforce.run_query",
        params: &["query"],
    },
    Tool {
        name: "Salesforce - Create Object",
        function: "salesforce.create_new_object",
        params: &["object_type", "fields"],
    },
    Tool {
        name: "Salesforce - Update Object",
        function: "salesforce.update_object_by_id",
        params: &["object_type", "object_id", "fields"],
    },
    Tool {
        name: "Salesforce - Batch Upsert",
        function: "salesforce.upsert_by_external_id",
        params: &["object_type", "external_id_field", "records"],
    },
    Tool {
        name: "Monday - Create Item",
        function: "monday.monday_create_item",
        params: &["board_id", "item_name", "column_values"],
    },
    Tool {
        name: "LinkedIn - Search People",
        function: "linkedin.search_people",
        params: &["keywords"],
    },
    Tool {
        name: "LinkedIn - Get Own Profile",
        function: "linkedin.get_own_profile",
        params: &[],
    },
    Tool {
        name: "LinkedIn - Send Invite",
        function: "linkedin.send_invite",
        params: &["profile_id", "message"],
    },
    Tool {
        name: "Outlook - Send Email",
        function: "outlook.send_email",
        params: &["receiver", "subject", "body"],
    },
    Tool {
        name: "Twilio - Send SMS",
        function: "twilio.send_sms",
        params: &["to", "body"],
    },
    Tool {
        name: "Voice - Make Phone Call",
        function: "voice.call",
        params: &["phone_number", "prompt"],
    },
    Tool {
        name: "File - Save File",
        function: "file.save_file",
        params: &["filename", "content"],
    },
    Tool {
        name: "Extract - Extract Information",
        function: "extract.extract",
        params: &["text", "fields"],
    },
    Tool {
        name: "Answer - Answer Question",
        function: "answer.answer",
        params: &["question", "context"],
    },
    Tool {
        name: "Link - Read Text From Link",
        function: "link.read_link",
        params: &["url"],
    },
    Tool {
        name: "Link - Read Text From Link Using Vision",
        function: "link.read_link_vision",
        params: &["url"],
    },
    Tool {
        name: "Brainbase Table - Find Rows",
        function: "brainbase_table.find_rows",
        params: &["table", "filters"],
    },
    Tool {
        name: "Brainbase Table - Insert Row",
        function: "brainbase_table.insert_row",
        params: &["table", "row"],
    },
    Tool {
        name: "Brainbase Table - Update Row",
        function: "brainbase_table.update_row",
        params: &["table", "row_id", "row"],
    },
    Tool {
        name: "Brainbase Table - Delete Row",
        function: "brainbase_table.delete_row",
        params: &["table", "row_id"],
    },
    Tool {
        name: "Brainbase Table - Get Tables",
        function: "brainbase_table.get_tables",
        params: &[],
    },
    Tool {
        name: "Brainbase Table - Execute Query",
        function: "brainbase_table.execute_query",
        params: &["query"],
    },
    Tool {
        name: "Google Search - Search",
        function: "google_search.search",
        params: &["query"],
    },
    Tool {
        name: "Code - Run Code",
        function: "code.run",
        params: &["code"],
    },
    Tool {
        name: "Brainbase Forms - Fill In",
        function: "brainbase_forms.fill_in",
        params: &["form_id", "values"],
    },
    Tool {
        name: "API - GET Request",
        function: "api.get_req",
        params: &["url", "params", "headers"],
    },
    Tool {
        name: "API - POST Request",
        function: "api.post_req",
        params: &["url", "data", "headers"],
    },
];

impl Tool {
    /// One catalogue line, showing the call the way we want it written.
    pub fn describe(&self) -> String {
        let call = if self.function.starts_with("api.") {
            // The language guide documents the api helpers with keyword arguments.
            let args: Vec<String> = self.params.iter().map(|p| format!("{p}=...")).collect();
            format!("{}({})", self.function, args.join(", "))
        } else {
            let keys: Vec<String> = self.params.iter().map(|p| format!("\"{p}\": ...")).collect();
            format!("{}({{{}}})", self.function, keys.join(", "))
        };
        format!("- {call}  # {}", self.name)
    }
}

/// The tools named by `names`, in catalogue order. A model may give the display name
/// instead of the function, so both count; unknown names are ignored.
pub(crate) fn by_function(names: &[String]) -> Vec<&'static Tool> {
    TOOLS
        .iter()
        .filter(|t| names.iter().any(|n| n.trim() == t.function || n.trim() == t.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_all_forty_tools_once() {
        assert_eq!(TOOLS.len(), 40);
        let mut functions: Vec<_> = TOOLS.iter().map(|t| t.function).collect();
        functions.sort_unstable();
        functions.dedup();
        assert_eq!(functions.len(), 40);
    }

    #[test]
    fn describe_uses_a_dict_or_keyword_arguments() {
        let gmail = by_function(&["gmail.send_email".to_string()])[0];
        assert_eq!(
            gmail.describe(),
            r#"- gmail.send_email({"receiver": ..., "subject": ..., "body": ...})  # Gmail - Send Email"#
        );
        let get = by_function(&["API - GET Request".to_string(), "nope".to_string()]);
        assert_eq!(get.len(), 1);
        assert_eq!(
            get[0].describe(),
            "- api.get_req(url=..., params=..., headers=...)  # API - GET Request"
        );
    }
}
