# An uncaught NoMethodError several calls deep, without a cause.
$stdout.sync = true

def total(order)
  order[:items].sum { |i| i[:price] }
end

def checkout(order)
  total(order)
end

puts "INFO before crash"
checkout({})
