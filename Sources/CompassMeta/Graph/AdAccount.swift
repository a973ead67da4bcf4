import CompassPlatform

/// An ad account as the connector keeps and shows it (camelCase, Meta's status as `status`).
/// Meta's own field names arrive as `GraphRow` and are converted in one place.
package struct AdAccount: Codable, Sendable, Equatable {
    package struct Business: Codable, Sendable, Equatable {
        package var id: String
        package var name: String?

        package init(id: String, name: String? = nil) {
            self.id = id
            self.name = name
        }
    }
    /// `act_<digits>`.
    package var id: String
    package var accountId: String?
    package var name: String?
    package var currency: String?
    /// Meta's `account_status`: 1 active, 2 disabled, 3 unsettled, 7 risk review, 9 grace period,
    /// 100 pending closure, 101 closed.
    package var status: Int?
    package var business: Business?

    package init(
        id: String, accountId: String? = nil, name: String? = nil, currency: String? = nil,
        status: Int? = nil, business: Business? = nil
    ) {
        self.id = id
        self.accountId = accountId
        self.name = name
        self.currency = currency
        self.status = status
        self.business = business
    }

    /// A row of `/me/adaccounts` in Meta's field names.
    struct GraphRow: Decodable {
        struct Business: Decodable {
            var id: String
            var name: String?
        }
        var id: String
        var accountId: String?
        var name: String?
        var currency: String?
        var accountStatus: Int?
        var business: Business?
        enum CodingKeys: String, CodingKey {
            case id, name, currency, business
            case accountId = "account_id"
            case accountStatus = "account_status"
        }
    }

    init(_ row: GraphRow) {
        self.init(
            id: row.id, accountId: row.accountId, name: row.name, currency: row.currency,
            status: row.accountStatus, business: row.business.map { Business(id: $0.id, name: $0.name) })
    }
}
